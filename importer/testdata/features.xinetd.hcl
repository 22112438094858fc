# acceptd configuration translated from xinetd by `acceptd import xinetd`.
#   testdata/features.xinetd
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
# note: defaults: log_type, log_on_success and log_on_failure have no
#       equivalent: acceptd logs every connection once when it ends (service,
#       instance, remote and local address, pid, uid, exit status, duration)
#       to its own log.
# note: defaults: banner = /etc/issue.net has no equivalent: acceptd sends
#       nothing of its own on a connection.
# note: testdata/features.xinetd:13: include /etc/xinetd.local not followed:
#       give the files it names on the command line too (acceptd import xinetd
#       /etc/xinetd.conf /etc/xinetd.d/*).
# note: testdata/features.xinetd:14: includedir /etc/xinetd.d not followed:
#       give the files it names on the command line too (acceptd import xinetd
#       /etc/xinetd.conf /etc/xinetd.d/*).

# testdata/features.xinetd:16: service hello
# note: flag NORETRY has no acceptd equivalent.
# note: instances = UNLIMITED: acceptd needs a number; this one is far above
#       what the host's processes and file descriptors allow.
# note: cps = 25 30: xinetd turned the service off for 30 seconds beyond the
#       rate; acceptd pauses it only until the second has passed.
# note: access_times = 08:00-18:00 has no equivalent: acceptd serves at all
#       times.
# note: unknown attribute frobnicate ignored.
# note: libwrap = hello: acceptd does not consult /etc/hosts.allow and
#       /etc/hosts.deny; write their rules as allow and deny.
# note: log_type, log_on_success and log_on_failure have no equivalent:
#       acceptd logs every connection once when it ends (service, instance,
#       remote and local address, pid, uid, exit status, duration) to its own
#       log.
# note: mdns has no equivalent: acceptd registers nothing with mDNS.
# note: nice = 10 has no equivalent; put /usr/bin/nice -n 10 in front of the
#       command, or run acceptd with Nice=.
# note: passenv = PATH TZ: a program gets nothing of acceptd's own
#       environment; add the variables with their values to environment.
# note: rlimit_rss has no equivalent (Linux ignores RLIMIT_RSS); memory_max
#       limits an instance's memory.
# note: groups = no: acceptd gives a program its user's supplementary groups.
service "hello" {
  listen                     = ["[::]:31337"]
  max_connections            = 1000000
  max_connections_per_source = 4
  allow                      = ["127.0.0.1", "10.0.0.0/8", "192.168.1.0/24", "192.168.2.0/24", "2001:db8::/32", "::1"]
  deny                       = ["10.1.0.0/16"]

  rate_limit {
    connections = 25
    interval    = "1s"
  }

  socket {
    ipv6_only = true
    keepalive = true
    no_delay  = true
  }

  exec {
    command = ["/usr/local/bin/hello", "--greeting", "$${GREETING}", "%%{x}", "\"q\\uote\""]
    user    = "nobody"
    group   = "nogroup"
    environment = {
      GREETING      = "hi$there"
      LANG          = "C.UTF-8"
      "1WEIRD.NAME" = "x"
    }
    umask = "0077"
    limits {
      as     = "64M"
      cpu    = 30
      data   = "infinity"
      stack  = "8M"
      nofile = 1024
    }
  }
}

# testdata/features.xinetd:53: service ftp
# note: host "localhost" taken as 127.0.0.1.
# note: tcpd would look for "in.ftpd" in its REAL_DAEMON_DIR; /usr/sbin
#       assumed, as Debian builds tcpd.
# note: tcpd unwrapped: /usr/sbin/in.ftpd now runs directly, so
#       /etc/hosts.allow and /etc/hosts.deny no longer apply to this service;
#       write their rules for it as allow and deny.
# note: only_from .example.com left out: names are not resolved, so those
#       clients are refused; add their addresses to allow.
service "ftp" {
  listen                     = ["127.0.0.1:21"]
  max_connections            = 50
  max_connections_per_source = 10
  allow                      = ["10.0.0.0/8"]

  exec {
    command = ["/usr/sbin/in.ftpd", "-l", "-a"]
    user    = "root"
    umask   = "0022"
  }
}

# testdata/features.xinetd:65: service telnet
service "telnet" {
  listen                     = ["192.0.2.1:23"]
  max_connections            = 50
  max_connections_per_source = 10

  proxy {
    backend = "10.0.0.2:23"
  }
}

# testdata/features.xinetd:74: service telnet (id telnet-v6)
service "telnet-v6" {
  listen                     = ["[2001:db8::1]:23"]
  max_connections            = 50
  max_connections_per_source = 10

  proxy {
    backend = "[2001:db8::2]:23"
  }
}

# testdata/features.xinetd:83: service telnet (id telnet-named)
# note: redirect to backend.example.org: names are not resolved; write the
#       address.
# service "telnet-named" {
#   listen                     = ["192.0.2.2:23"]
#   max_connections            = 50
#   max_connections_per_source = 10
# 
#   proxy {
#     backend = "backend.example.org:23"
#   }
# }

# testdata/features.xinetd:92: service finger
# note: no_access = badhost.example.org names hosts or networks; acceptd
#       matches addresses and names are not resolved: write them as deny.
# service "finger" {
#   listen                     = ["0.0.0.0:79"]
#   max_connections            = 50
#   max_connections_per_source = 10
# 
#   exec {
#     command = ["/usr/sbin/in.fingerd"]
#     user    = "nobody"
#     umask   = "0022"
#   }
# }

# testdata/features.xinetd:101: service login
# note: only_from with no value lets nobody in.
# service "login" {
#   listen                     = ["0.0.0.0:513"]
#   max_connections            = 50
#   max_connections_per_source = 10
# 
#   exec {
#     command = ["/usr/sbin/in.rlogind"]
#     user    = "root"
#     umask   = "0022"
#   }
# }

# testdata/features.xinetd:110: service auth
# note: only_from and no_access cannot be kept: in wait mode the program
#       accepts its clients itself, and acceptd does not see them.
# service "auth" {
#   listen = ["0.0.0.0:113"]
# 
#   exec {
#     command = ["/usr/sbin/identd"]
#     accept  = false
#     user    = "identd"
#     umask   = "0022"
#   }
# }

# testdata/features.xinetd:119: service systat
service "systat" {
  listen                     = ["0.0.0.0:11"]
  max_connections            = 50
  max_connections_per_source = 10
  deny                       = ["192.168.1.5"]

  exec {
    command = ["/bin/ps", "-auwwx"]
    user    = "nobody"
    umask   = "0022"
  }
}

# testdata/features.xinetd:130: service servers
# note: xinetd's internal "servers" service has no acceptd builtin (there are
#       echo, discard, daytime, chargen and time).
# (not translated)

# testdata/features.xinetd:138: service echo
# note: env applies to a program; this service runs none.
service "echo" {
  listen                     = ["127.0.0.1:7"]
  max_connections            = 50
  max_connections_per_source = 10
  builtin                    = "echo"
}

# testdata/features.xinetd:147: service irc
# note: the SENSOR flag has no acceptd equivalent.
# (not translated)

# testdata/features.xinetd:157: service unknownname
# note: no port, and service "unknownname" has no tcp port in the services
#       table; add port = N.
# (not translated)

# testdata/features.xinetd:165: service redirect-named-port
service "redirect-named-port" {
  listen                     = ["0.0.0.0:6023"]
  max_connections            = 50
  max_connections_per_source = 10

  proxy {
    backend = "192.0.2.20:23"
  }
}

# testdata/features.xinetd:174: service redirect-bad-port
# note: redirect = 192.0.2.20 0: "0" is not a port acceptd can connect to.
# (not translated)

# testdata/features.xinetd:183: service redirect-wildcard
# note: redirect to 0.0.0.0: a wildcard address, which connect() takes as this
#       host; written as 127.0.0.1, check it.
# service "redirect-wildcard" {
#   listen                     = ["0.0.0.0:6025"]
#   max_connections            = 50
#   max_connections_per_source = 10
# 
#   proxy {
#     backend = "127.0.0.1:80"
#   }
# }

# testdata/features.xinetd:192: service nowait-udp
# note: wait = no on a datagram socket: acceptd hands the socket to one
#       program at a time (accept = false).
service "nowait-udp" {
  listen = ["udp://0.0.0.0:5000"]

  exec {
    command = ["/usr/local/bin/udpthing"]
    accept  = false
    user    = "root"
    umask   = "0022"
  }
}

# testdata/features.xinetd:202: service noprogram
# note: no server, redirect or type = INTERNAL; xinetd would refuse this
#       service.
# (not translated)

# testdata/features.xinetd:210: service emptyserver
# note: server has no value; xinetd would refuse this service.
# (not translated)

# testdata/features.xinetd:219: service selfredirect
# note: acceptd would refuse this service: Proxy loop: backend
#       "192.0.2.1:5003" is this service's own listen address.
# service "selfredirect" {
#   listen                     = ["192.0.2.1:5003"]
#   max_connections            = 50
#   max_connections_per_source = 10
# 
#   proxy {
#     backend = "192.0.2.1:5003"
#   }
# }
