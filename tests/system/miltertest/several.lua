-- Five messages on one connection, each from a domain with another SPF result: each gets
-- its own result (nothing carried over from the message before).
local t = dofile(dir .. "/lib.lua")
local conn = t.open("192.0.2.10", "mail.pass.example")
local cases = {
  {"pass.example", "pass"}, {"fail.example", "fail"}, {"softfail.example", "softfail"},
  {"neutral.example", "neutral"}, {"none.example", "none"},
}
for i, c in ipairs(cases) do
  local from = "u" .. i .. "@" .. c[1]
  t.mail(conn, "<" .. from .. ">", "SEVERAL" .. i)
  local text = "From: <" .. from .. ">\r\nSubject: message " .. i .. "\r\n\r\nBody " .. i .. "\r\n"
  local r = t.message(conn, text)
  t.check(r == SMFIR_CONTINUE, "message %d: eom reply %s", i, t.reply_name(r))
  local ar = t.has(conn, "Authentication-Results",
                   {"spf=" .. c[2] .. " smtp.mailfrom=" .. from,
                    "spf=pass smtp.helo=mail.pass.example", "header.from=" .. c[1]})
  t.check(t.inserted(conn, "Authentication-Results", 1) == nil, "message %d: two AR", i)
  for j, o in ipairs(cases) do
    if j ~= i then t.lacks(conn, "Authentication-Results", {"@" .. o[1]}) end
  end
  local spf = t.inserted(conn, "Received-SPF")
  t.check(spf ~= nil and spf:lower():match("^%s*" .. c[2] .. " ") ~= nil,
          "message %d: Received-SPF %s", i, tostring(spf))
end
mt.disconnect(conn)
