# acceptd configuration translated from xinetd by `acceptd import xinetd`.
#   testdata/sample.xinetd
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

# testdata/sample.xinetd:23: service login
# note: log_type, log_on_success and log_on_failure have no equivalent:
#       acceptd logs every connection once when it ends (service, instance,
#       remote and local address, pid, uid, exit status, duration) to its own
#       log.
service "login" {
  listen          = ["0.0.0.0:513"]
  max_connections = 25
  allow           = ["128.138.193.0/24", "128.138.204.0/24", "128.138.209.0/24", "128.138.243.0/24", "127.0.0.1", "::1", "192.231.139.0/24"]

  exec {
    command = ["/usr/etc/in.rlogind"]
    user    = "root"
  }
}

# testdata/sample.xinetd:34: service shell
# note: flag IDONLY has no acceptd equivalent.
# note: instances = UNLIMITED: acceptd needs a number; this one is far above
#       what the host's processes and file descriptors allow.
# note: log_type, log_on_success and log_on_failure have no equivalent:
#       acceptd logs every connection once when it ends (service, instance,
#       remote and local address, pid, uid, exit status, duration) to its own
#       log.
service "shell" {
  listen          = ["0.0.0.0:514"]
  max_connections = 1000000
  allow           = ["128.138.193.0/24", "128.138.204.0/24", "128.138.209.0/24", "128.138.243.0/24", "127.0.0.1", "::1", "192.231.139.0/24"]

  exec {
    command = ["/usr/etc/in.rshd"]
    user    = "root"
  }
}

# testdata/sample.xinetd:46: service exec
service "exec" {
  listen          = ["0.0.0.0:512"]
  max_connections = 25
  allow           = ["128.138.193.0/24", "128.138.204.0/24", "128.138.209.0/24", "128.138.243.0/24", "127.0.0.1", "::1", "192.231.139.0/24"]

  exec {
    command = ["/usr/etc/in.rexecd"]
    user    = "root"
  }
}

# testdata/sample.xinetd:54: service comsat
# note: only_from and no_access cannot be kept: in wait mode the program
#       accepts its clients itself, and acceptd does not see them.
# service "comsat" {
#   listen = ["udp://0.0.0.0:512"]
# 
#   exec {
#     command = ["/usr/etc/in.comsat"]
#     accept  = false
#     user    = "nobody"
#     group   = "tty"
#   }
# }

# testdata/sample.xinetd:63: service talk
# note: only_from and no_access cannot be kept: in wait mode the program
#       accepts its clients itself, and acceptd does not see them.
# service "talk" {
#   listen = ["udp://0.0.0.0:517"]
# 
#   exec {
#     command = ["/usr/etc/in.talkd"]
#     accept  = false
#     user    = "root"
#   }
# }

# testdata/sample.xinetd:71: service ntalk
# note: only_from and no_access cannot be kept: in wait mode the program
#       accepts its clients itself, and acceptd does not see them.
# service "ntalk" {
#   listen = ["udp://0.0.0.0:518"]
# 
#   exec {
#     command = ["/usr/etc/in.ntalkd"]
#     accept  = false
#     user    = "root"
#   }
# }

# testdata/sample.xinetd:84: service telnet
# note: log_type, log_on_success and log_on_failure have no equivalent:
#       acceptd logs every connection once when it ends (service, instance,
#       remote and local address, pid, uid, exit status, duration) to its own
#       log.
service "telnet" {
  listen          = ["127.0.0.1:23"]
  max_connections = 25
  allow           = ["128.138.193.0/24", "128.138.204.0/24", "128.138.209.0/24", "128.138.243.0/24", "127.0.0.1", "::1", "192.231.139.0/24"]

  exec {
    command = ["/usr/etc/in.telnetd"]
    user    = "root"
  }
}

# testdata/sample.xinetd:94: service telnet
# note: log_type, log_on_success and log_on_failure have no equivalent:
#       acceptd logs every connection once when it ends (service, instance,
#       remote and local address, pid, uid, exit status, duration) to its own
#       log.
service "telnet-tcp" {
  listen          = ["192.231.139.175:23"]
  max_connections = 25
  allow           = ["128.138.193.0/24", "128.138.204.0/24", "128.138.209.0/24", "128.138.243.0/24", "127.0.0.1", "::1", "192.231.139.0/24"]

  proxy {
    backend = "128.138.202.20:23"
  }
}

# testdata/sample.xinetd:105: service ftp
# note: access_times = 2:00-8:59 12:00-23:59 has no equivalent: acceptd serves
#       at all times.
# note: log_type, log_on_success and log_on_failure have no equivalent:
#       acceptd logs every connection once when it ends (service, instance,
#       remote and local address, pid, uid, exit status, duration) to its own
#       log.
# note: nice = 10 has no equivalent; put /usr/bin/nice -n 10 in front of the
#       command, or run acceptd with Nice=.
service "ftp" {
  listen          = ["0.0.0.0:21"]
  max_connections = 4
  allow           = ["128.138.193.0/24", "128.138.204.0/24", "128.138.209.0/24", "128.138.243.0/24", "127.0.0.1", "::1", "192.231.139.0/24"]

  exec {
    command = ["/usr/etc/in.ftpd", "-l"]
    user    = "root"
  }
}

# testdata/sample.xinetd:126: service name
# note: no port, and service "name" has no udp port in the services table; add
#       port = N.
# (not translated)

# testdata/sample.xinetd:142: service tftp
# note: only_from and no_access cannot be kept: in wait mode the program
#       accepts its clients itself, and acceptd does not see them.
# note: disabled in xinetd (listed in the defaults' disabled).
# service "tftp" {
#   listen = ["udp://0.0.0.0:69"]
# 
#   exec {
#     command = ["/usr/etc/in.tftpd", "-s", "/tftpboot"]
#     accept  = false
#     user    = "root"
#   }
# }

# testdata/sample.xinetd:155: service finger
service "finger" {
  listen          = ["0.0.0.0:79"]
  max_connections = 25
  allow           = ["128.138.193.0/24", "128.138.204.0/24", "128.138.209.0/24", "128.138.243.0/24", "127.0.0.1", "::1", "192.231.139.0/24"]

  exec {
    command = ["/usr/etc/in.fingerd"]
    user    = "nobody"
  }
}

# testdata/sample.xinetd:163: service systat
# note: log_type, log_on_success and log_on_failure have no equivalent:
#       acceptd logs every connection once when it ends (service, instance,
#       remote and local address, pid, uid, exit status, duration) to its own
#       log.
service "systat" {
  listen          = ["0.0.0.0:11"]
  max_connections = 25
  allow           = ["128.138.209.0/24"]

  exec {
    command = ["/usr/bin/ps", "-auwwx"]
    user    = "nobody"
  }
}

# testdata/sample.xinetd:174: service netstat
# note: log_type, log_on_success and log_on_failure have no equivalent:
#       acceptd logs every connection once when it ends (service, instance,
#       remote and local address, pid, uid, exit status, duration) to its own
#       log.
service "netstat" {
  listen          = ["0.0.0.0:15"]
  max_connections = 25
  allow           = ["128.138.209.0/24"]

  exec {
    command = ["/usr/ucb/netstat", "-f", "inet"]
    user    = "nobody"
  }
}

# testdata/sample.xinetd:191: service echo (id echo-stream)
service "echo-stream" {
  listen          = ["0.0.0.0:7"]
  max_connections = 25
  allow           = ["128.138.193.0/24", "128.138.204.0/24", "128.138.209.0/24", "128.138.243.0/24", "127.0.0.1", "::1", "192.231.139.0/24"]
  builtin         = "echo"
}

# testdata/sample.xinetd:201: service echo (id echo-dgram)
service "echo-dgram" {
  listen          = ["udp://0.0.0.0:7"]
  max_connections = 25
  allow           = ["128.138.193.0/24", "128.138.204.0/24", "128.138.209.0/24", "128.138.243.0/24", "127.0.0.1", "::1", "192.231.139.0/24"]
  builtin         = "echo"
}

# testdata/sample.xinetd:211: service chargen (id chargen-stream)
service "chargen-stream" {
  listen          = ["0.0.0.0:19"]
  max_connections = 25
  allow           = ["128.138.193.0/24", "128.138.204.0/24", "128.138.209.0/24", "128.138.243.0/24", "127.0.0.1", "::1", "192.231.139.0/24"]
  builtin         = "chargen"
}

# testdata/sample.xinetd:221: service chargen (id chargen-dgram)
service "chargen-dgram" {
  listen          = ["udp://0.0.0.0:19"]
  max_connections = 25
  allow           = ["128.138.193.0/24", "128.138.204.0/24", "128.138.209.0/24", "128.138.243.0/24", "127.0.0.1", "::1", "192.231.139.0/24"]
  builtin         = "chargen"
}

# testdata/sample.xinetd:231: service daytime (id daytime-stream)
service "daytime-stream" {
  listen          = ["0.0.0.0:13"]
  max_connections = 25
  allow           = ["128.138.193.0/24", "128.138.204.0/24", "128.138.209.0/24", "128.138.243.0/24", "127.0.0.1", "::1", "192.231.139.0/24"]
  builtin         = "daytime"
}

# testdata/sample.xinetd:241: service daytime (id daytime-dgram)
service "daytime-dgram" {
  listen          = ["udp://0.0.0.0:13"]
  max_connections = 25
  allow           = ["128.138.193.0/24", "128.138.204.0/24", "128.138.209.0/24", "128.138.243.0/24", "127.0.0.1", "::1", "192.231.139.0/24"]
  builtin         = "daytime"
}

# testdata/sample.xinetd:251: service time (id time-stream)
service "time-stream" {
  listen          = ["0.0.0.0:37"]
  max_connections = 25
  allow           = ["128.138.193.0/24", "128.138.204.0/24", "128.138.209.0/24", "128.138.243.0/24", "127.0.0.1", "::1", "192.231.139.0/24"]
  builtin         = "time"
}

# testdata/sample.xinetd:262: service time (id time-dgram)
service "time-dgram" {
  listen          = ["udp://0.0.0.0:37"]
  max_connections = 25
  allow           = ["128.138.193.0/24", "128.138.204.0/24", "128.138.209.0/24", "128.138.243.0/24", "127.0.0.1", "::1", "192.231.139.0/24"]
  builtin         = "time"
}

# testdata/sample.xinetd:276: service rstatd
# note: type RPC has no acceptd equivalent.
# (not translated)

# testdata/sample.xinetd:288: service rquotad
# note: type RPC has no acceptd equivalent.
# (not translated)

# testdata/sample.xinetd:299: service rusersd
# note: type RPC has no acceptd equivalent.
# (not translated)

# testdata/sample.xinetd:310: service sprayd
# note: type RPC has no acceptd equivalent.
# (not translated)

# testdata/sample.xinetd:321: service walld
# note: type RPC has no acceptd equivalent.
# (not translated)

# testdata/sample.xinetd:337: service irc
# note: the SENSOR flag has no acceptd equivalent.
# (not translated)
