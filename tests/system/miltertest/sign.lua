-- Outbound mail is signed with every key of its From domain (corp.example: RSA and Ed25519):
-- from an internal network (127.0.0.1), and from an outside address with {auth_authen} set.
-- Nothing is verified (verify-internal is off): no Authentication-Results, no Received-SPF.
-- -D msg=FILE -D out=FILE (the inserted signatures, for dkimpy)
local t = dofile(dir .. "/lib.lua")
local text = t.read(msg)
local function signed(conn, qid)
  local r = t.message(conn, text)
  t.check(r == SMFIR_CONTINUE, "%s: eom reply %s", qid, t.reply_name(r))
  local a = t.has(conn, "DKIM-Signature", {"d=corp.example"}, 0)
  local b = t.has(conn, "DKIM-Signature", {"d=corp.example"}, 1)
  t.check(t.inserted(conn, "DKIM-Signature", 2) == nil, "%s: three signatures", qid)
  local algs = (a:match("a=([%w-]+)") or "") .. " " .. (b:match("a=([%w-]+)") or "")
  t.check(algs == "rsa-sha256 ed25519-sha256" or algs == "ed25519-sha256 rsa-sha256",
          "%s: algorithms %s", qid, algs)
  t.check(not mt.eom_check(conn, MT_HDRINSERT, "Authentication-Results"), "%s: AR", qid)
  t.check(not mt.eom_check(conn, MT_HDRINSERT, "Received-SPF"), "%s: Received-SPF", qid)
  t.dump(out, conn, qid, {"DKIM-Signature"})
end
-- internal network
local conn = t.open("127.0.0.1", "localhost")
t.mail(conn, "<alice@corp.example>", "SIGN1")
signed(conn, "SIGN1")
mt.disconnect(conn)
-- SASL-authenticated client from outside
conn = t.open("192.0.2.20", "laptop.example")
t.mail(conn, "<alice@corp.example>", "SIGN2", "{auth_authen}", "alice")
signed(conn, "SIGN2")
-- the same client, unauthenticated, on the same connection: verified, not signed
t.mail(conn, "<alice@corp.example>", "SIGN3")
local r = t.message(conn, text)
t.check(r == SMFIR_CONTINUE, "SIGN3: eom reply %s", t.reply_name(r))
t.check(t.inserted(conn, "DKIM-Signature") == nil, "SIGN3 was signed")
t.has(conn, "Authentication-Results", {"spf=fail smtp.mailfrom=alice@corp.example"})
mt.disconnect(conn)
