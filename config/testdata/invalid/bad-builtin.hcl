service "hello" {
  listen  = ["31337"]
  builtin = "qotd"
}

service "number" {
  listen  = ["31338"]
  builtin = 7
}
