service {
  listen  = ["31337"]
  builtin = "echo"
}
