service "hello" {
  listen = "31337"
  exec { command = ["/bin/cat"] }
}

service "nested" {
  listen = [["31338"], "31339"]
  exec { command = ["/bin/cat"] }
}
