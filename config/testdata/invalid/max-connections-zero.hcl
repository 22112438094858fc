service "hello" {
  listen          = ["31337"]
  max_connections = 0
  builtin         = "echo"
}

service "negative" {
  listen          = ["31338"]
  max_connections = -1
  builtin         = "echo"
}
