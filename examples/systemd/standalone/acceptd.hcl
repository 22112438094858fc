# /etc/acceptd/acceptd.hcl for acceptd.service (standalone).

log {
  level = "info"
}

control {
  socket = "/run/acceptd/control.sock"
}

# The systemd Accept=yes how-to: one process per connection.
service "hello" {
  listen = ["31337"]
  exec {
    command            = ["/bin/echo", "Hello World"]
    ignore_exit_status = true
    user               = "nobody"
  }
}

# A relay in front of a daemon that only listens on a UNIX socket.
service "web" {
  listen          = ["8080"]
  max_connections = 256
  proxy {
    backend         = "unix:///run/nginx/socket"
    connect_timeout = "5s"
  }
}
