service "hello world" {
  listen  = ["31337"]
  builtin = "echo"
}

service "a/b" {
  listen  = ["31338"]
  builtin = "echo"
}

service "" {
  listen  = ["31339"]
  builtin = "echo"
}
