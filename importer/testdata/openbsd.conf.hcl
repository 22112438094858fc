# acceptd configuration translated from inetd by `acceptd import inetd`.
#   testdata/openbsd.conf
# Read it before use: every "note:" says what acceptd does differently or not
# at all, and services written commented out need a decision before they can
# run.
# note: acceptd allows 64 concurrent connections per service unless
#       max_connections says otherwise; inetd had no such limit.
# note: inetd's "tcp" and "udp" are IPv4 only and so are the addresses below
#       (0.0.0.0); "tcp6" becomes tcp6://[::], IPv6 only.

# testdata/openbsd.conf:2: 127.0.0.1:ftp stream tcp nowait root /usr/libexec/ftpd ftpd -US
# testdata/openbsd.conf:3: [::1]:ftp stream tcp6 nowait root /usr/libexec/ftpd ftpd -US
service "ftp" {
  listen = ["127.0.0.1:21", "[::1]:21"]

  exec {
    command = ["/usr/libexec/ftpd", "-US"]
    user    = "root"
  }
}

# testdata/openbsd.conf:4: ::1:daytime stream tcp6 nowait root internal
service "daytime" {
  listen  = ["[::1]:13"]
  builtin = "daytime"
}

# testdata/openbsd.conf:5: localhost:time stream tcp nowait root internal
# note: host "localhost" taken as 127.0.0.1.
service "time" {
  listen  = ["127.0.0.1:37"]
  builtin = "time"
}

# testdata/openbsd.conf:6: gateway.example.org:finger stream tcp nowait _fingerd /usr/libexec/fingerd fingerd -lsm
# note: host "gateway.example.org" is not an IP address and names are not
#       resolved; write the address.
# service "finger" {
#   listen = ["gateway.example.org:79"]
# 
#   exec {
#     command = ["/usr/libexec/fingerd", "-lsm"]
#     user    = "_fingerd"
#   }
# }

# testdata/openbsd.conf:10: auth stream tcp nowait.100 _identd:_identd /usr/libexec/identd identd -el
# note: inetd turned the service off for 10 minutes after 100 connections in a
#       minute; acceptd pauses it only until the minute has passed.
service "auth" {
  listen = ["10.0.0.1:113"]

  rate_limit {
    connections = 100
    interval    = "60s"
  }

  exec {
    command = ["/usr/libexec/identd", "-el"]
    user    = "_identd"
    group   = "_identd"
  }
}

# testdata/openbsd.conf:11: chargen dgram udp wait root internal
service "chargen" {
  listen  = ["udp://10.0.0.1:19"]
  builtin = "chargen"
}

# testdata/openbsd.conf:13: comsat dgram udp wait root:tty /usr/libexec/comsat comsat
service "comsat" {
  listen = ["udp://0.0.0.0:512"]

  exec {
    command = ["/usr/libexec/comsat"]
    accept  = false
    user    = "root"
    group   = "tty"
  }
}

# testdata/openbsd.conf:14: 31337 stream tcp46 nowait www /usr/local/bin/hello hello ${USER} %{x} "quoted"
service "31337" {
  listen = ["[::]:31337"]

  exec {
    command = ["/usr/local/bin/hello", "$${USER}", "%%{x}", "\"quoted\""]
    user    = "www"
  }
}

# testdata/openbsd.conf:15: qotd stream tcp nowait root /usr/local/bin/qotd qotd
# note: service "qotd" has no tcp port in the services table; write the port
#       number instead of the name.
# (not translated)

# testdata/openbsd.conf:16: imap2 stream tcp nowait/10/20/2 root /usr/local/libexec/imapd imapd
# note: max-connections-per-ip-per-minute 20 has no acceptd equivalent
#       (rate_limit counts every client together).
service "imap2" {
  listen                     = ["0.0.0.0:143"]
  max_connections            = 10
  max_connections_per_source = 2

  exec {
    command = ["/usr/local/libexec/imapd"]
    user    = "root"
  }
}

# testdata/openbsd.conf:17: /var/run/x.sock stream unix nowait root/staff /usr/local/bin/x x
# note: login class "staff" has no acceptd equivalent.
service "x" {
  listen = ["/var/run/x.sock"]

  exec {
    command = ["/usr/local/bin/x"]
    user    = "root"
  }
}

# testdata/openbsd.conf:18: relative.sock stream unix nowait root /usr/local/bin/x x
# note: "relative.sock" is not a UNIX socket path acceptd can listen on.
# (not translated)

# testdata/openbsd.conf:19: telnet stream tcp nowait root /bin/busybox telnetd -i
service "telnet" {
  listen = ["0.0.0.0:23"]

  exec {
    command = ["/bin/busybox", "telnetd", "-i"]
    user    = "root"
  }
}

# testdata/openbsd.conf:20: tcpmux stream tcp nowait root internal
# note: inetd's internal "tcpmux" service has no acceptd builtin (there are
#       echo, discard, daytime, chargen and time).
# (not translated)

# testdata/openbsd.conf:21: git stream tcp nowait nobody /usr/bin/git git daemon --inetd --base-path=/srv/git
service "git" {
  listen = ["0.0.0.0:9418"]

  exec {
    command = ["/usr/bin/git", "daemon", "--inetd", "--base-path=/srv/git"]
    user    = "nobody"
  }
}

# testdata/openbsd.conf:22: git stream tcp nowait nobody /usr/bin/git git daemon --inetd --base-path=/srv/git2
# note: 0.0.0.0:9418 is already the socket of service "git"; acceptd gives
#       each socket to one service.
# service "git-tcp" {
#   listen = ["0.0.0.0:9418"]
# 
#   exec {
#     command = ["/usr/bin/git", "daemon", "--inetd", "--base-path=/srv/git2"]
#     user    = "nobody"
#   }
# }

# testdata/openbsd.conf:23: ping raw icmp nowait root /bin/true true
# note: protocol "icmp" has no acceptd equivalent; acceptd serves tcp, udp and
#       unix sockets.
# (not translated)

# testdata/openbsd.conf:24: echo stream udp nowait root internal
# note: socket type "stream" does not go with protocol "udp".
# (not translated)

# testdata/openbsd.conf:25: smtp stream tcp nowait root /usr/sbin/exim4 exim4 -bs
service "smtp" {
  listen = ["0.0.0.0:25"]

  exec {
    command = ["/usr/sbin/exim4", "-bs"]
    user    = "root"
  }
}

# testdata/openbsd.conf:29: chargen stream tcp nowait root internal
# testdata/openbsd.conf:30: chargen stream tcp6 nowait root internal
service "chargen-tcp" {
  listen  = ["19"]
  builtin = "chargen"
}

# testdata/openbsd.conf:31: chargen stream tcp6 nowait root internal
# note: tcp6://[::]:19 is already the socket of service "chargen-tcp"; acceptd
#       gives each socket to one service.
# service "chargen-tcp6" {
#   listen  = ["tcp6://[::]:19"]
#   builtin = "chargen"
# }
