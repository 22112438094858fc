service "hello" {
  listen = ["31337"
  builtin = "echo"
}
