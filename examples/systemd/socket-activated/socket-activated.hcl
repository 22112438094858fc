# /etc/acceptd/socket-activated.hcl for acceptd.socket + acceptd.service.

log {
  level = "info"
}

control {
  socket = "/run/acceptd/control.sock"
}

# Exit when nothing happened for ten minutes; acceptd.socket keeps the
# sockets and starts acceptd again on the next connection.
exit_idle_time = "10m"

# ListenStream=8080 in acceptd.socket: the same address here takes the
# inherited socket instead of binding a new one.
service "hello" {
  listen = ["8080"]
  exec {
    command            = ["/bin/echo", "Hello World"]
    ignore_exit_status = true
    user               = "nobody"
  }
}

# ListenStream=/run/acceptd-echo.sock.
service "echo" {
  listen  = ["/run/acceptd-echo.sock"]
  builtin = "echo"
}
