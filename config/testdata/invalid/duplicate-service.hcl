service "hello" {
  listen  = ["31337"]
  builtin = "echo"
}

service "hello" {
  listen  = ["31338"]
  builtin = "discard"
}
