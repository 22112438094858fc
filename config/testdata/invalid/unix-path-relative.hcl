service "hello" {
  listen = ["run/hello.sock", "hello.sock", "unix://run/hello.sock", "handoff:accept.sock"]
  exec { command = ["/bin/cat"] }
}
