-- A client that goes away in the middle of the body (no abort, no quit: the socket is just
-- closed), twice; then a new connection is served as usual.
local t = dofile(dir .. "/lib.lua")
for i = 1, 2 do
  local conn = t.open("192.0.2.10", "mail.pass.example")
  t.mail(conn, "<a@pass.example>", "GONE" .. i)
  t.headers(conn, {{name = "From", value = " a@pass.example"}, {name = "Subject", value = " gone"}})
  t.body(conn, string.rep("half a message\r\n", 2000))
  mt.disconnect(conn, false)
end
local conn = t.open("192.0.2.10", "mail.pass.example")
t.mail(conn, "<a@pass.example>", "GONE3")
local r = t.message(conn, t.read(msg))
t.check(r == SMFIR_CONTINUE, "eom reply %s", t.reply_name(r))
t.has(conn, "Authentication-Results", {"spf=pass smtp.mailfrom=a@pass.example", "dkim=pass"})
mt.disconnect(conn)
