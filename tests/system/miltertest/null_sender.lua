-- The null reverse path (MAIL FROM:<>): SPF checks the HELO identity (RFC 7208 2.4), as
-- postmaster@HELO. -D out=FILE gets the fields for the pytest.
local t = dofile(dir .. "/lib.lua")
local conn = t.open("192.0.2.10", "mail.pass.example")
t.mail(conn, "<>", "NULL1")
local r = t.message(conn,
  "From: MAILER-DAEMON@mail.pass.example\r\nSubject: bounce\r\n\r\nBounced.\r\n")
t.check(r == SMFIR_CONTINUE, "eom reply %s", t.reply_name(r))
local ar = t.has(conn, "Authentication-Results", {"spf=pass", "mail.pass.example"})
t.lacks(conn, "Authentication-Results", {"fail", "temperror", "permerror"})
local spf = t.has(conn, "Received-SPF", {"client-ip=192.0.2.10", "helo=mail.pass.example"})
t.check(spf:match("^%s*Pass ") ~= nil, "Received-SPF is not Pass: %s", spf)
t.dump(out, conn, "NULL1", {"Authentication-Results", "Received-SPF"})
mt.disconnect(conn)
