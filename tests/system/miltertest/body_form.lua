-- One message from FILE (-D msg), as it stands (8-bit bytes, LF-only lines: sent as they are);
-- -D qid=ID -D out=FILE; the Authentication-Results must have spf=pass and dkim=DKIM (-D dkim).
local t = dofile(dir .. "/lib.lua")
local conn = t.open("192.0.2.10", "mail.pass.example")
t.mail(conn, "<a@pass.example>", qid)
local r = t.message(conn, t.read(msg), 4096)
t.check(r == SMFIR_CONTINUE, "eom reply %s", t.reply_name(r))
t.has(conn, "Authentication-Results", {"spf=pass smtp.mailfrom=a@pass.example", "dkim=" .. dkim})
t.dump(out, conn, qid, {"Authentication-Results"})
mt.disconnect(conn)
