service "hello" {
  listen  = ["31337"]
  builtin = "echo"
  exec { command = ["/bin/cat"] }
  handoff { socket = "/run/h.sock" }
}
