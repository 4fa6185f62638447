-- A message of 1,000 header fields (signed by pass.example over From, Subject and a few of
-- them): every field is taken, DKIM and SPF pass. -D msg=FILE
local t = dofile(dir .. "/lib.lua")
local conn = t.open("192.0.2.10", "mail.pass.example")
t.mail(conn, "<a@pass.example>", "HEADERS1")
local fields, body = t.parse(t.read(msg))
t.check(#fields >= 1000, "only %d fields", #fields)
t.headers(conn, fields)
t.body(conn, body)
t.check(mt.eom(conn) == nil, "eom")
t.check(mt.getreply(conn) == SMFIR_CONTINUE, "eom reply %s", t.reply_name(mt.getreply(conn)))
t.has(conn, "Authentication-Results", {"spf=pass smtp.mailfrom=a@pass.example", "dkim=pass",
                                       "dmarc=pass"})
mt.disconnect(conn)
