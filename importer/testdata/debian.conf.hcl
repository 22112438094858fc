# acceptd configuration translated from inetd by `acceptd import inetd`.
#   testdata/debian.conf
# Read it before use: every "note:" says what acceptd does differently or not
# at all, and services written commented out need a decision before they can
# run.
# note: acceptd allows 64 concurrent connections per service unless
#       max_connections says otherwise; inetd had no such limit.
# note: inetd's "tcp" and "udp" are IPv4 only and so are the addresses below
#       (0.0.0.0); "tcp6" becomes tcp6://[::], IPv6 only.

# testdata/debian.conf:21: echo stream tcp nowait root internal
# testdata/debian.conf:22: echo stream tcp6 nowait root internal
service "echo" {
  listen  = ["7"]
  builtin = "echo"
}

# testdata/debian.conf:23: echo dgram udp wait root internal
service "echo-udp" {
  listen  = ["udp://0.0.0.0:7"]
  builtin = "echo"
}

# testdata/debian.conf:24: daytime stream tcp nowait root internal
service "daytime" {
  listen  = ["0.0.0.0:13"]
  builtin = "daytime"
}

# testdata/debian.conf:25: discard stream tcp nowait nobody internal
# note: builtins run inside acceptd; user "nobody" does not apply.
service "discard" {
  listen  = ["0.0.0.0:9"]
  builtin = "discard"
}

# testdata/debian.conf:28: telnet stream tcp nowait telnetd /usr/sbin/tcpd /usr/sbin/in.telnetd
# note: tcpd unwrapped: /usr/sbin/in.telnetd now runs directly, so
#       /etc/hosts.allow and /etc/hosts.deny no longer apply to this service;
#       write their rules for it as allow and deny.
service "telnet" {
  listen = ["0.0.0.0:23"]

  exec {
    command = ["/usr/sbin/in.telnetd"]
    user    = "telnetd"
  }
}

# testdata/debian.conf:29: ftp stream tcp nowait root /usr/sbin/tcpd /usr/sbin/in.ftpd
# note: disabled by update-inetd (#<off>#).
# note: tcpd unwrapped: /usr/sbin/in.ftpd now runs directly, so
#       /etc/hosts.allow and /etc/hosts.deny no longer apply to this service;
#       write their rules for it as allow and deny.
# service "ftp" {
#   listen = ["0.0.0.0:21"]
# 
#   exec {
#     command = ["/usr/sbin/in.ftpd"]
#     user    = "root"
#   }
# }

# testdata/debian.conf:32: shell stream tcp nowait root /usr/sbin/tcpd /usr/sbin/in.rshd
# note: tcpd unwrapped: /usr/sbin/in.rshd now runs directly, so
#       /etc/hosts.allow and /etc/hosts.deny no longer apply to this service;
#       write their rules for it as allow and deny.
service "shell" {
  listen = ["0.0.0.0:514"]

  exec {
    command = ["/usr/sbin/in.rshd"]
    user    = "root"
  }
}

# testdata/debian.conf:33: login stream tcp nowait root /usr/sbin/tcpd /usr/sbin/in.rlogind
# note: tcpd unwrapped: /usr/sbin/in.rlogind now runs directly, so
#       /etc/hosts.allow and /etc/hosts.deny no longer apply to this service;
#       write their rules for it as allow and deny.
service "login" {
  listen = ["0.0.0.0:513"]

  exec {
    command = ["/usr/sbin/in.rlogind"]
    user    = "root"
  }
}

# testdata/debian.conf:34: talk dgram udp wait nobody.tty /usr/sbin/in.talkd in.talkd
service "talk" {
  listen = ["udp://0.0.0.0:517"]

  exec {
    command = ["/usr/sbin/in.talkd"]
    accept  = false
    user    = "nobody"
    group   = "tty"
  }
}

# testdata/debian.conf:35: ntalk dgram udp wait nobody.tty /usr/sbin/in.ntalkd in.ntalkd
service "ntalk" {
  listen = ["udp://0.0.0.0:518"]

  exec {
    command = ["/usr/sbin/in.ntalkd"]
    accept  = false
    user    = "nobody"
    group   = "tty"
  }
}

# testdata/debian.conf:38: nntp stream tcp nowait news /usr/sbin/tcpd /usr/sbin/leafnode
# note: tcpd unwrapped: /usr/sbin/leafnode now runs directly, so
#       /etc/hosts.allow and /etc/hosts.deny no longer apply to this service;
#       write their rules for it as allow and deny.
service "nntp" {
  listen = ["0.0.0.0:119"]

  exec {
    command = ["/usr/sbin/leafnode"]
    user    = "news"
  }
}

# testdata/debian.conf:41: ident stream tcp wait identd /usr/sbin/identd identd
service "ident" {
  listen = ["0.0.0.0:113"]

  exec {
    command = ["/usr/sbin/identd"]
    accept  = false
    user    = "identd"
  }
}

# testdata/debian.conf:42: finger stream tcp nowait nobody /usr/sbin/tcpd in.fingerd
# note: tcpd would look for "in.fingerd" in its REAL_DAEMON_DIR; /usr/sbin
#       assumed, as Debian builds tcpd.
# note: tcpd unwrapped: /usr/sbin/in.fingerd now runs directly, so
#       /etc/hosts.allow and /etc/hosts.deny no longer apply to this service;
#       write their rules for it as allow and deny.
service "finger" {
  listen = ["0.0.0.0:79"]

  exec {
    command = ["/usr/sbin/in.fingerd"]
    user    = "nobody"
  }
}

# testdata/debian.conf:46: tftp dgram udp wait nobody /usr/sbin/tcpd /usr/sbin/in.tftpd /srv/tftp
# note: tcpd unwrapped: /usr/sbin/in.tftpd now runs directly, so
#       /etc/hosts.allow and /etc/hosts.deny no longer apply to this service;
#       write their rules for it as allow and deny.
service "tftp" {
  listen = ["udp://0.0.0.0:69"]

  exec {
    command = ["/usr/sbin/in.tftpd", "/srv/tftp"]
    accept  = false
    user    = "nobody"
  }
}

# testdata/debian.conf:49: rstatd/1-3 dgram rpc/udp wait root /usr/sbin/tcpd /usr/sbin/rpc.rstatd
# note: RPC services have no acceptd equivalent: they need a portmapper
#       registration, which acceptd does not do.
# (not translated)

# testdata/debian.conf:54: swat stream tcp nowait.400 root /usr/sbin/tcpd /usr/sbin/swat
# note: service "swat" has no tcp port in the services table; write the port
#       number instead of the name.
# (not translated)

# testdata/debian.conf:55: cvspserver stream tcp nowait.400 root /usr/bin/cvs cvs -f --allow-root=/srv/cvs pserver
# note: inetd turned the service off for 10 minutes after 400 connections in a
#       minute; acceptd pauses it only until the minute has passed.
service "cvspserver" {
  listen = ["0.0.0.0:2401"]

  rate_limit {
    connections = 400
    interval    = "60s"
  }

  exec {
    command = ["/usr/bin/cvs", "-f", "--allow-root=/srv/cvs", "pserver"]
    user    = "root"
  }
}

# testdata/debian.conf:56: rsync stream tcp nowait root /usr/bin/rsync rsyncd --daemon
# note: argv[0] was "rsyncd"; acceptd starts /usr/bin/rsync with its own path
#       as argv[0].
service "rsync" {
  listen = ["0.0.0.0:873"]

  exec {
    command = ["/usr/bin/rsync", "--daemon"]
    user    = "root"
  }
}
