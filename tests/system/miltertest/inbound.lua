-- An inbound message from an outside client: SPF (MAIL FROM and HELO), Sender ID, DKIM and
-- DMARC all pass; Authentication-Results and Received-SPF are inserted, nothing is deleted.
-- -D msg=FILE (signed by pass.example) -D out=FILE
local t = dofile(dir .. "/lib.lua")
local conn = t.open("192.0.2.10", "mail.pass.example")
t.mail(conn, "<a@pass.example>", "INBOUND1")
local r = t.message(conn, t.read(msg))
t.check(r == SMFIR_CONTINUE, "eom reply %s", t.reply_name(r))
t.has(conn, "Authentication-Results", {
  " mx.test;", "spf=pass smtp.mailfrom=a@pass.example", "spf=pass smtp.helo=mail.pass.example",
  "sender-id=pass", "dkim=pass", "header.d=pass.example", "dmarc=pass"})
t.lacks(conn, "Authentication-Results", {"fail", "temperror", "permerror"})
t.check(t.inserted(conn, "Authentication-Results", 1) == nil, "two Authentication-Results")
local spf = t.has(conn, "Received-SPF", {"client-ip=192.0.2.10", "receiver=mx.test"})
t.check(spf:match("^%s*Pass ") ~= nil, "Received-SPF is not Pass: %s", spf)
t.check(mt.eom_check(conn, MT_HDRINSERT, "Authentication-Results"), "no AR insert")
t.check(not mt.eom_check(conn, MT_HDRDELETE), "a field was deleted")
t.check(not mt.eom_check(conn, MT_HDRADD), "a field was appended, not inserted")
t.dump(out, conn, "INBOUND1", {"Authentication-Results", "Received-SPF"})
mt.disconnect(conn)
