service "hello" {
  listen = [
    "localhost:80",
    "::1:80",
    "http://127.0.0.1:80",
    "tcp4://[::1]:80",
    "systemd:",
    "fd:1",
    "example",
  ]
  exec { command = ["/bin/cat"] }
}
