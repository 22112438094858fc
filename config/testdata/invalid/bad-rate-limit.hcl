service "hello" {
  listen = ["31337"]
  rate_limit {
    connections = 0
    interval    = "0s"
  }
  builtin = "echo"
}

service "missing" {
  listen = ["31338"]
  rate_limit {
    connections = 10
  }
  builtin = "echo"
}
