-- Helpers shared by the miltertest scripts (Lua 5.3, miltertest's `mt` API).
--
-- Scripts start with:  local t = dofile(dir .. "/lib.lua")
-- Globals from the command line (miltertest -D name=value): spec (the milter's socket),
-- dir (this directory), and per script msg/out/... as the pytest passes them.
-- Every check failure prints "FAIL: ..." and raises a Lua error, so miltertest exits
-- non-zero; the pytest asserts the exit status and shows the output.
--
-- Messages are sent as Postfix sends them: header values with their leading space
-- (SMFIP_HDR_LEADSPC is negotiated), folded values with LF alone between the lines, and
-- the body in chunks as given. The milter negotiates SMFIP_NORCPT (miltertest then skips
-- RCPT by itself): no script calls mt.rcptto, and none needs mt.data.

local t = {}

local reply_names = {}
for _, n in ipairs({"SMFIR_CONTINUE", "SMFIR_ACCEPT", "SMFIR_REJECT", "SMFIR_TEMPFAIL",
                    "SMFIR_DISCARD", "SMFIR_REPLYCODE", "SMFIR_QUARANTINE"}) do
  if _G[n] ~= nil then reply_names[_G[n]] = n end
end

function t.reply_name(r)
  return reply_names[r] or string.format("%q", string.char(r))
end

function t.fail(fmt, ...)
  local msg = string.format(fmt, ...)
  mt.echo("FAIL: " .. msg)
  error(msg, 2)
end

function t.check(cond, fmt, ...)
  if not cond then t.fail(fmt, ...) end
  return cond
end

-- r: what an mt.* call returned (nil on success); the milter's reply must be `want`
-- (default SMFIR_CONTINUE).
function t.step(conn, r, what, want)
  want = want or SMFIR_CONTINUE
  t.check(r == nil, "%s: %s", what, tostring(r))
  local got = mt.getreply(conn)
  t.check(got == want, "%s: reply %s, want %s", what, t.reply_name(got), t.reply_name(want))
end

function t.connect()
  mt.set_timeout(120)
  local conn = mt.connect(spec, 100, 0.1)
  t.check(conn ~= nil, "cannot connect to %s", spec)
  return conn
end

-- A connection with its client address and HELO sent.
function t.open(ip, helo)
  local conn = t.connect()
  t.step(conn, mt.conninfo(conn, helo, ip), "conninfo " .. ip)
  t.step(conn, mt.helo(conn, helo), "helo " .. helo)
  return conn
end

-- MAIL FROM with the queue id macro i (and more macro pairs after it).
function t.mail(conn, from, qid, ...)
  mt.macro(conn, SMFIC_MAIL, "i", qid, ...)
  t.step(conn, mt.mailfrom(conn, from), "mailfrom " .. from)
end

function t.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- text -> list of {name, value} (value as after the colon, lines joined by LF), body
function t.parse(text)
  local a = text:find("\r\n\r\n", 1, true)
  local b = text:find("\n\n", 1, true)
  local head, body
  if a and (not b or a < b) then
    head, body = text:sub(1, a + 1), text:sub(a + 4)
  elseif b then
    head, body = text:sub(1, b), text:sub(b + 2)
  else
    head, body = text, ""
  end
  local fields = {}
  for line in head:gmatch("([^\n]*)\n") do
    line = line:gsub("\r$", "")
    if line:match("^[ \t]") and #fields > 0 then
      fields[#fields].value = fields[#fields].value .. "\n" .. line
    elseif line ~= "" then
      local name, value = line:match("^([^:]+):(.*)$")
      t.check(name ~= nil, "not a header field: %q", line)
      fields[#fields + 1] = {name = name, value = value}
    end
  end
  return fields, body
end

function t.headers(conn, fields)
  for _, f in ipairs(fields) do
    t.step(conn, mt.header(conn, f.name, f.value), "header " .. f.name)
  end
  t.step(conn, mt.eoh(conn), "eoh")
end

function t.body(conn, body, chunk)
  chunk = chunk or 65000
  for i = 1, #body, chunk do
    t.step(conn, mt.bodystring(conn, body:sub(i, i + chunk - 1)), "body")
  end
end

-- Headers and body of text (a whole message), then end of message: the reply.
function t.message(conn, text, chunk)
  local fields, body = t.parse(text)
  t.headers(conn, fields)
  t.body(conn, body, chunk)
  t.check(mt.eom(conn) == nil, "eom failed")
  return mt.getreply(conn)
end

function t.inserted(conn, name, n)
  return mt.getheader(conn, name, n or 0)
end

-- The inserted field `name` (the n-th, from 0) must contain every string in list.
function t.has(conn, name, list, n)
  local v = t.inserted(conn, name, n)
  t.check(v ~= nil, "no %s inserted", name)
  for _, s in ipairs(list) do
    t.check(v:find(s, 1, true) ~= nil, "%s lacks %q:\n%s", name, s, v)
  end
  return v
end

function t.lacks(conn, name, list, n)
  local v = t.inserted(conn, name, n)
  for _, s in ipairs(list) do
    t.check(v == nil or v:find(s, 1, true) == nil, "%s has %q:\n%s", name, s, v or "")
  end
  return v
end

-- Appends the fields inserted by the last end of message to file `path`, for the pytest:
-- "qid\0name\0value\0" per field, in the order they stand in the final header.
function t.dump(path, conn, qid, names)
  local f = assert(io.open(path, "ab"))
  for _, name in ipairs(names) do
    local n = 0
    while true do
      local v = mt.getheader(conn, name, n)
      if v == nil then break end
      f:write(qid, "\0", name, "\0", v, "\0")
      n = n + 1
    end
  end
  f:close()
end

return t
