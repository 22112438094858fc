log {
  level  = "verbose"
  format = "xml"
  color  = true
}
