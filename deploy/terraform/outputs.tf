output "public_ip" {
  description = "Point the gateway's DNS name here; clients pin the PCRs of measurements.json"
  value       = aws_instance.shroud.public_ip
}
