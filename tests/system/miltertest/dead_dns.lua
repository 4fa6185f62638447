-- The resolver does not answer: every DNS-based result is temperror, none is pass.
-- -D mode=header: accepted with those results; -D mode=tempfail: a 4xx reply.
-- -D msg=FILE (signed, so DKIM needs its key too) -D qid=ID
local t = dofile(dir .. "/lib.lua")
local conn = t.open("192.0.2.10", "mail.pass.example")
t.mail(conn, "<a@pass.example>", qid)
local r = t.message(conn, t.read(msg))
if mode == "header" then
  t.check(r == SMFIR_CONTINUE, "eom reply %s", t.reply_name(r))
  t.has(conn, "Authentication-Results", {"spf=temperror smtp.mailfrom=a@pass.example",
                                         "spf=temperror smtp.helo=mail.pass.example",
                                         "dkim=temperror", "dmarc=temperror"})
  t.lacks(conn, "Authentication-Results", {"spf=pass", "sender-id=pass", "dkim=pass", "dmarc=pass"})
  t.has(conn, "Received-SPF", {"TempError"})
else
  t.check(r == SMFIR_REPLYCODE or r == SMFIR_TEMPFAIL, "eom reply %s, want a temporary failure",
          t.reply_name(r))
  if r == SMFIR_REPLYCODE then
    local texts = {
      {"4.7.24", "SPF"}, {"4.7.0", "Sender ID"}, {"4.7.5", "DKIM"}, {"4.7.5", "DomainKeys"},
      {"4.7.0", "DMARC"}}
    local found = false
    for _, x in ipairs(texts) do
      if mt.eom_check(conn, MT_SMTPREPLY, "451", x[1],
                      "temporary DNS failure checking " .. x[2] .. ", try again later") then
        mt.echo("reply: 451 " .. x[1] .. " ... " .. x[2])
        found = true
      end
    end
    t.check(found, "no 451 4.7.x temporary DNS failure reply")
  end
end
mt.disconnect(conn)
