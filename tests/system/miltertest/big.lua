-- A 50 MB body (-D msg=FILE, signed by pass.example), sent in 64 KB chunks as the MTA does:
-- DKIM passes (the whole body was hashed) and the milter keeps its memory flat (the pytest
-- reads its RSS).
local t = dofile(dir .. "/lib.lua")
local conn = t.open("192.0.2.10", "mail.pass.example")
t.mail(conn, "<a@pass.example>", "BIG1")
local fields, body = t.parse(t.read(msg))
t.check(#body >= 50 * 1000 * 1000, "body of %d bytes", #body)
t.headers(conn, fields)
t.body(conn, body, 65535)
body = nil
t.check(mt.eom(conn) == nil, "eom")
t.check(mt.getreply(conn) == SMFIR_CONTINUE, "eom reply %s", t.reply_name(mt.getreply(conn)))
t.has(conn, "Authentication-Results", {"spf=pass smtp.mailfrom=a@pass.example", "dkim=pass",
                                       "dmarc=pass"})
mt.disconnect(conn)
