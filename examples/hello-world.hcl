# The systemd "Accept=yes" how-to, for acceptd: one /bin/sh per connection
# on TCP port 31337, the connection on its stdin and stdout.
#
#   go run ./cmd/acceptd run -config examples/hello-world.hcl
#   nc 127.0.0.1 31337
#
# Run it from the repository root: a command argument without a leading
# slash is the program's business, and the program starts in acceptd's
# working directory. (The program itself, /bin/sh here, must be an
# absolute path or a bare name found in PATH.)

log {
  level = "info"
}

# Somewhere a user without root can write; the default is
# /run/acceptd/control.sock.
control {
  socket = "/tmp/acceptd-hello/control.sock"
}

service "hello" {
  listen = ["31337"]

  exec {
    command            = ["/bin/sh", "examples/hello-world.sh"]
    ignore_exit_status = true
    stderr             = "null"
  }
}
