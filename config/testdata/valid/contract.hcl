log {
  level  = "info"      # debug | info | warn | error
  format = "console"   # console | json
}

control {
  socket = "/run/acceptd/control.sock"   # status and reload; mode 0600 by default
}

metrics {
  listen = "127.0.0.1:9464"   # optional Prometheus endpoint, off when absent
}

exit_idle_time = "0s"   # >0: exit after this long with no connection (for socket-activated use)

# Accept=yes: one process per connection, the socket on stdin and stdout.
service "hello" {
  listen          = ["31337"]
  max_connections = 64          # concurrent connections; default 64 (systemd's)
  overflow        = "refuse"    # at the limit: refuse (accept and close, counted)
                                # | wait (stop accepting; clients wait in the backlog)
  max_connections_per_source = 0  # per client; 0 = unlimited
  source_prefix_v4 = 32         # a "client" is this prefix of its address:
  source_prefix_v6 = 64         # one IPv6 host usually owns a whole /64
  allow = ["127.0.0.0/8", "::1"]  # optional; CIDRs; deny wins over allow
  deny  = []

  rate_limit {                  # optional: at most `connections` accepted per `interval`;
    connections = 200           # beyond it acceptd pauses this service until the window
    interval    = "2s"          # has passed, logs it, and resumes by itself — it never
  }                             # leaves a service disabled

  accept_proxy_protocol = false # true: read a PROXY v1/v2 header first (from a load
  trusted_proxies = []          # balancer in trusted_proxies); REMOTE_ADDR etc. and
                                # allow/deny then see the real client

  socket {                      # options for every listener of this service
    backlog     = 4096
    reuse_port  = false
    free_bind   = false
    transparent = false
    ipv6_only   = false
    keepalive   = false
    no_delay    = false
    mode        = "0660"        # UNIX sockets: permission bits,
    owner       = "foobar"      # owner
    group       = "foobar"      # and group of the socket file
  }

  exec {
    command            = ["/opt/octoi-helloworld.sh"]
    ignore_exit_status = true    # systemd's "-" prefix: a non-zero exit is not a failure
    stderr             = "null"  # log (default) | null | socket | inherit
    user               = "helloworld"   # name or number; or:
    group              = "helloworld"
    dynamic_user       = false   # true: a fresh UID/GID per instance, see below
    environment        = { GREETING = "hi" }
    working_directory  = "/"
    runtime_max        = "0s"    # >0: SIGTERM after this long, SIGKILL after stop_timeout
    stop_timeout       = "5s"
    no_new_privileges  = false   # true: no setuid escalation; implied by dynamic_user
    limits { nofile = 1024 }     # rlimits: nofile, nproc, as, cpu, core, fsize, ...
  }
}

# Accept=no: acceptd accepts and relays every connection to a backend.
service "nginx" {
  listen          = ["80"]
  max_connections = 256
  proxy {
    backend         = "unix:///run/nginx/socket"
    connect_timeout = "5s"
    connect_retry   = "0s"      # >0: keep retrying a refused connect this long (backend starting)
    idle_timeout    = "0s"      # >0: close a relayed connection silent in both directions this long
    proxy_protocol  = ""        # "" | "v1" | "v2": tell the backend who the client is

    start {                     # optional: start the backend on the first connection
      command        = ["/usr/sbin/nginx", "-g", "daemon off;"]
      user           = "www-data"
      stop_when_idle = "10m"    # stop it after this long with no relayed connection
    }
  }
}

# Wait mode: one long-running process gets the listening socket itself.
service "tftp" {
  listen = ["udp://127.0.0.1:6969"]
  exec {
    accept  = false             # the socket is handed over, not each connection
    pass    = "stdin"           # stdin (inetd "wait") | listen_fds (systemd LISTEN_FDS)
    command = ["/usr/sbin/in.tftpd", "-s", "/srv/tftp"]
  }
}

# Handoff: the accepted socket itself goes to another daemon (SCM_RIGHTS), the
# way socketbox does it: the receiver may live in another network namespace.
service "containers" {
  listen = ["[::]:22"]
  handoff {
    socket = "/run/containers/default/accept.sock"   # where unmatched connections go
    route {
      local  = "2001:db8::1/128"    # by the address the client connected to
      socket = "/run/containers/one/accept.sock"
    }
    route {
      local  = "2001:db8::2/128"
      socket = "/run/containers/two/accept.sock"
    }
  }
}

# The receiving side is an ordinary listen address: inside the container,
# acceptd (or any program using the project's handoff package) takes the
# connections that arrive on that UNIX socket as if it had accepted them.
service "ssh-in-container" {
  listen = ["handoff:/run/containers/one/accept.sock"]
  exec { command = ["/usr/sbin/sshd", "-i"] }
}

# Built-in trivial services, as inetd has them.
service "echo" {
  listen  = ["127.0.0.1:7"]
  builtin = "echo"              # echo | discard | daytime | chargen | time
}
