-- A message aborted after part of its body (SMFIC_ABORT), then a second message on the same
-- connection: the second gets its own, complete results; the first none.
local t = dofile(dir .. "/lib.lua")
local conn = t.open("192.0.2.10", "mail.pass.example")
t.mail(conn, "<x@fail.example>", "ABORT1")
t.headers(conn, {{name = "From", value = " x@fail.example"}, {name = "Subject", value = " one"}})
t.body(conn, string.rep("first message, aborted\r\n", 1000))
t.check(mt.abort(conn) == nil, "abort")
t.mail(conn, "<a@pass.example>", "ABORT2")
local r = t.message(conn, t.read(msg))
t.check(r == SMFIR_CONTINUE, "eom reply %s", t.reply_name(r))
t.has(conn, "Authentication-Results", {"spf=pass smtp.mailfrom=a@pass.example", "dkim=pass",
                                       "dmarc=pass"})
t.lacks(conn, "Authentication-Results", {"fail.example"})
t.check(t.inserted(conn, "Authentication-Results", 1) == nil, "two Authentication-Results")
mt.disconnect(conn)
