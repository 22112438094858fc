# Every kind of mistake `acceptd check` must report, all at once.
colour = "blue"

service "unknown-field" {
  listen = ["127.0.0.1:7001"]
  listne = ["127.0.0.1:7002"]
  exec {
    command = ["/bin/cat"]
  }
}

service "missing-command" {
  listen = ["127.0.0.1:7003"]
  exec {
    user = "root"
  }
}

service "two-modes" {
  listen = ["127.0.0.1:7004"]
  exec {
    command = ["/bin/cat"]
  }
  builtin = "echo"
}

service "bad-address" {
  listen = ["127.0.0.1:http", "tcp5://1.2.3.4:5"]
  exec {
    command = ["/bin/cat"]
  }
}

service "duplicate" {
  listen = ["127.0.0.1:7001"]
  exec {
    command = ["/bin/cat"]
  }
}

service "port-range" {
  listen = ["127.0.0.1:70000"]
  exec {
    command = ["/bin/cat"]
  }
}

service "unix-paths" {
  listen = ["relative/x.sock", "/tmp/this-path-is-much-too-long-for-a-unix-socket-because-sun-path-holds-only-108-bytes-and-not-one-more/x.sock"]
  exec {
    command = ["/bin/cat"]
  }
}

service "users" {
  listen = ["127.0.0.1:7005"]
  exec {
    command = ["/bin/cat"]
    user    = "no-such-user-acceptd"
    group   = "no-such-group-acceptd"
  }
}

service "values" {
  listen   = ["/tmp/acceptd-check/v.sock"]
  overflow = "queue"
  socket {
    mode = "0999"
  }
  exec {
    command      = ["/bin/cat"]
    runtime_max  = "5 minutes"
    stop_timeout = "-1s"
    stderr       = "file"
  }
}

service "no-program" {
  listen = ["127.0.0.1:7006"]
  exec {
    command = ["/nonexistent/acceptd-test-program"]
  }
}
