# Several per-connection services in one daemon, in the manner of an
# /etc/xinetd.d directory. Every program here is part of coreutils, so
# `acceptd check -config examples/services.hcl` passes on any Linux host;
# run it as root (it uses `user = "nobody"` and a socket owner), e.g.
#
#   sudo go run ./cmd/acceptd run -config examples/services.hcl
#   date | nc 127.0.0.1 10007        # echo
#   nc 127.0.0.1 10013               # daytime
#   nc -U /tmp/acceptd-services/whoami.sock

log {
  level  = "info"
  format = "json"
}

control {
  socket = "/tmp/acceptd-services/control.sock"
}

# inetd's "echo stream tcp nowait nobody /bin/cat cat".
service "echo" {
  listen                     = ["127.0.0.1:10007", "[::1]:10007"]
  max_connections            = 32
  overflow                   = "wait"   # a 33rd client waits in the backlog
  max_connections_per_source = 4
  exec {
    command      = ["/bin/cat"]
    user         = "nobody"
    runtime_max  = "1m"                 # nobody keeps a slot forever
    stop_timeout = "2s"
  }
}

# daytime (RFC 867): one line, then close.
service "daytime" {
  listen = ["127.0.0.1:10013"]
  allow  = ["127.0.0.0/8", "::1"]
  exec {
    command            = ["/bin/date", "-R"]
    stderr             = "null"
    ignore_exit_status = true
  }
}

# A UNIX socket for local clients only: the program sees who connected in
# UNIXREMOTEPID, UNIXREMOTEEUID and UNIXREMOTEEGID.
service "whoami" {
  listen = ["/tmp/acceptd-services/whoami.sock"]
  socket {
    mode = "0666"
  }
  exec {
    command     = ["/bin/sh", "-c", "echo \"$ACCEPTD_INSTANCE: pid $UNIXREMOTEPID uid $UNIXREMOTEEUID says $GREETING\""]
    environment = { GREETING = "hello" }
  }
}
