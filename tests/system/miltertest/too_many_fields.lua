-- A header of 20,001 fields, past the milter's cap (RFC5322_MAX_FIELDS): an internal error for
-- that message, which mail.actions.on-error decides. -D want=continue|tempfail
local t = dofile(dir .. "/lib.lua")
local conn = t.open("192.0.2.10", "mail.pass.example")
t.mail(conn, "<a@pass.example>", "TOOMANY1")
mt.header(conn, "From", " a@pass.example")
for i = 1, 20000 do
  mt.header(conn, "X-F", " " .. i)
end
t.step(conn, mt.eoh(conn), "eoh")
t.step(conn, mt.bodystring(conn, "body\r\n"), "body")
t.check(mt.eom(conn) == nil, "eom")
local r = mt.getreply(conn)
local expect = want == "tempfail" and SMFIR_TEMPFAIL or SMFIR_CONTINUE
t.check(r == expect, "eom reply %s, want %s", t.reply_name(r), want)
t.check(not mt.eom_check(conn, MT_HDRINSERT, "Authentication-Results"),
        "a message the milter could not read got Authentication-Results")
-- the connection goes on: the next message is checked as usual
t.mail(conn, "<a@pass.example>", "TOOMANY2")
t.step(conn, mt.header(conn, "From", " a@pass.example"), "header")
t.step(conn, mt.eoh(conn), "eoh")
t.step(conn, mt.bodystring(conn, "body\r\n"), "body")
t.check(mt.eom(conn) == nil, "eom 2")
t.check(mt.getreply(conn) == SMFIR_CONTINUE, "eom 2 reply %s", t.reply_name(mt.getreply(conn)))
t.has(conn, "Authentication-Results", {"spf=pass smtp.mailfrom=a@pass.example"})
mt.disconnect(conn)
