# acceptd configuration translated from xinetd by `acceptd import xinetd`.
#   testdata/debian.xinetd.d/00-xinetd.conf
#   testdata/debian.xinetd.d/cvs
#   testdata/debian.xinetd.d/daytime
#   testdata/debian.xinetd.d/echo
#   testdata/debian.xinetd.d/echo-udp
#   testdata/debian.xinetd.d/rsync
#   testdata/debian.xinetd.d/servers
#   testdata/debian.xinetd.d/tftp
#   testdata/debian.xinetd.d/time
# Read it before use: every "note:" says what acceptd does differently or not
# at all, and services written commented out need a decision before they can
# run.
# note: acceptd allows 64 concurrent connections per service unless
#       max_connections says otherwise (xinetd: instances), and limits no rate
#       unless rate_limit says so (xinetd: cps, 50 per second by default).
# note: xinetd's services are IPv4 only unless flagged IPv6, and so are the
#       addresses below (0.0.0.0).
# note: acceptd gives a program its user's supplementary groups; xinetd gave
#       none unless groups = yes.
# note: testdata/debian.xinetd.d/00-xinetd.conf:14: includedir /etc/xinetd.d
#       not followed: give the files it names on the command line too (acceptd
#       import xinetd /etc/xinetd.conf /etc/xinetd.d/*).

# testdata/debian.xinetd.d/cvs:6: service cvspserver
# note: log_type, log_on_success and log_on_failure have no equivalent:
#       acceptd logs every connection once when it ends (service, instance,
#       remote and local address, pid, uid, exit status, duration) to its own
#       log.
# note: passenv = PATH: a program gets nothing of acceptd's own environment;
#       add the variables with their values to environment.
service "cvspserver" {
  listen = ["0.0.0.0:2401"]

  exec {
    command = ["/usr/bin/cvs", "-f", "--allow-root=/var/cvs", "pserver"]
    user    = "root"
    environment = {
      HOME = "/var/cvs"
    }
  }
}

# testdata/debian.xinetd.d/daytime:5: service daytime (id daytime-stream)
# note: disabled in xinetd (disable = yes).
# service "daytime-stream" {
#   listen  = ["0.0.0.0:13"]
#   builtin = "daytime"
# }

# testdata/debian.xinetd.d/daytime:17: service daytime (id daytime-dgram)
# note: disabled in xinetd (disable = yes).
# service "daytime-dgram" {
#   listen  = ["udp://0.0.0.0:13"]
#   builtin = "daytime"
# }

# testdata/debian.xinetd.d/echo:5: service echo (id echo-stream)
# note: disabled in xinetd (disable = yes).
# service "echo-stream" {
#   listen  = ["0.0.0.0:7"]
#   builtin = "echo"
# }

# testdata/debian.xinetd.d/echo:17: service echo (id echo-dgram)
# note: disabled in xinetd (disable = yes).
# service "echo-dgram" {
#   listen  = ["udp://0.0.0.0:7"]
#   builtin = "echo"
# }

# testdata/debian.xinetd.d/echo-udp:4: service echo (id echo-dgram)
# note: disabled in xinetd (disable = yes).
# service "echo-dgram-2" {
#   listen  = ["udp://0.0.0.0:7"]
#   builtin = "echo"
# }

# testdata/debian.xinetd.d/rsync:4: service rsync
# note: disabled in xinetd (disable = yes).
# note: log_type, log_on_success and log_on_failure have no equivalent:
#       acceptd logs every connection once when it ends (service, instance,
#       remote and local address, pid, uid, exit status, duration) to its own
#       log.
# service "rsync" {
#   listen = ["[::]:873"]
# 
#   exec {
#     command = ["/usr/bin/rsync", "--daemon"]
#     user    = "root"
#   }
# }

# testdata/debian.xinetd.d/servers:4: service servers
# note: xinetd's internal "servers" service has no acceptd builtin (there are
#       echo, discard, daytime, chargen and time).
# (not translated)

# testdata/debian.xinetd.d/tftp:6: service tftp
# note: per_source = 11: acceptd does not see the clients of a wait-mode
#       service.
# note: cps = 100 2: acceptd does not accept for a wait-mode service; nothing
#       to limit.
service "tftp" {
  listen = ["udp://0.0.0.0:69"]

  exec {
    command = ["/usr/sbin/in.tftpd", "-s", "/var/lib/tftpboot"]
    accept  = false
    user    = "root"
  }
}

# testdata/debian.xinetd.d/time:7: service time (id time-stream)
# note: disabled in xinetd (disable = yes).
# service "time-stream" {
#   listen  = ["0.0.0.0:37"]
#   builtin = "time"
# }

# testdata/debian.xinetd.d/time:19: service time (id time-dgram)
# note: disabled in xinetd (disable = yes).
# service "time-dgram" {
#   listen  = ["udp://0.0.0.0:37"]
#   builtin = "time"
# }
