-- actions.spf: reject: an SPF fail is refused at the end of the message with 550 5.7.23 and
-- the domain's explanation (exp=); a pass on the same connection is accepted.
local t = dofile(dir .. "/lib.lua")
local conn = t.open("192.0.2.30", "host.example")
t.mail(conn, "<x@fail.example>", "REJECT1")
local r = t.message(conn, "From: x@fail.example\r\nSubject: spoof\r\n\r\nHi.\r\n")
t.check(r == SMFIR_REPLYCODE, "eom reply %s, want SMFIR_REPLYCODE", t.reply_name(r))
t.check(mt.eom_check(conn, MT_SMTPREPLY, "550", "5.7.23",
                     "SPF fail: 192.0.2.30 is not allowed to send mail for fail.example"),
        "not the 550 5.7.23 reply with the explanation")
mt.disconnect(conn)
conn = t.open("192.0.2.10", "mail.pass.example")
t.mail(conn, "<a@pass.example>", "REJECT2")
r = t.message(conn, "From: a@pass.example\r\nSubject: fine\r\n\r\nHi.\r\n")
t.check(r == SMFIR_CONTINUE, "pass: eom reply %s", t.reply_name(r))
t.has(conn, "Authentication-Results", {"spf=pass smtp.mailfrom=a@pass.example"})
mt.disconnect(conn)
