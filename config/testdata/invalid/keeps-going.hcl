log {
  level = "loud"
}

service "first" {
  listen = ["localhost:1"]
  exec { command = ["nosuchprogram"] }
}

service "second" {
  listen = ["31337"]
  exec {
    command      = ["/bin/cat"]
    stop_timeout = "forever"
    user         = "nosuchuser"
  }
}

service "third" {
  listen  = ["31337"]
  builtin = "echo"
  proxy { backend = "127.0.0.1:1" }
}
