service "hello" {
  listen           = ["31337"]
  source_prefix_v4 = 33
  source_prefix_v6 = 129
  builtin          = "echo"
}

service "negative" {
  listen           = ["31338"]
  source_prefix_v4 = -1
  builtin          = "echo"
}
