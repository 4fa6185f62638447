-- Authentication-Results fields claiming our authserv-id (mx.test) are deleted, others kept.
-- The fields in the message, in order (smfi_chgheader counts them from 1):
--   1 "other.example; spf=pass ..."     kept: another server's
--   2 "mx.test; dkim=pass ..."          deleted: forged
--   3 "mx.testing; dkim=pass"           kept: another id sharing a prefix
--   4 "mx.test 1; spf=pass ..."         deleted: forged, with a version
local t = dofile(dir .. "/lib.lua")
local conn = t.open("192.0.2.10", "mail.pass.example")
t.mail(conn, "<a@pass.example>", "FORGED1")
t.headers(conn, {
  {name = "Authentication-Results",
   value = " other.example; spf=pass smtp.mailfrom=a@pass.example"},
  {name = "From", value = " A <a@pass.example>"},
  {name = "Authentication-Results", value = " mx.test; dkim=pass header.d=pass.example"},
  {name = "Subject", value = " forged results"},
  {name = "Authentication-Results", value = " mx.testing; dkim=pass header.d=pass.example"},
  {name = "Authentication-Results", value = " mx.test 1; spf=pass\n\tsmtp.mailfrom=a@pass.example"},
})
t.body(conn, "Hello.\r\n")
t.check(mt.eom(conn) == nil, "eom")
t.check(mt.getreply(conn) == SMFIR_CONTINUE, "eom reply %s", t.reply_name(mt.getreply(conn)))
t.check(mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results", 2), "forged #2 kept")
t.check(mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results", 4), "forged #4 kept")
t.check(not mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results", 1), "#1 deleted")
t.check(not mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results", 3), "#3 deleted")
t.check(not mt.eom_check(conn, MT_HDRDELETE, "From"), "From deleted")
-- our own field is still inserted, on top
t.has(conn, "Authentication-Results", {" mx.test;", "spf=pass smtp.mailfrom=a@pass.example",
                                       "dkim=none"})
mt.disconnect(conn)
