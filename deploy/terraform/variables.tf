variable "region" {
  description = "AWS region"
  type        = string
  default     = "us-east-1"
}

variable "instance_type" {
  description = "A Nitro-based type with at least 4 vCPUs (2 go to the enclave)"
  type        = string
  default     = "m6i.xlarge"
}

variable "vpc_id" {
  description = "The VPC of the instance"
  type        = string
}

variable "subnet_id" {
  description = "A public subnet of that VPC"
  type        = string
}

variable "client_cidrs" {
  description = "Who may reach port 443"
  type        = list(string)
  default     = ["0.0.0.0/0"]
}
