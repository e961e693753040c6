# An EC2 instance with Nitro Enclaves enabled, for the Shroud gateway (docs/deploy-nitro.md).
#
# NOT APPLIED FROM CI: CI only parses these files. Apply them yourself, with your own AWS
# credentials, after reading them. Nothing secret goes into variables or state: upstream API
# keys are given to the enclave at runtime, never here.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

# Amazon Linux 2023, which packages aws-nitro-enclaves-cli.
data "aws_ami" "al2023" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = ["al2023-ami-2023.*-x86_64"]
  }
}

resource "aws_security_group" "shroud" {
  name        = "shroud-gateway"
  description = "Shroud: RA-TLS on 443 only"
  vpc_id      = var.vpc_id

  ingress {
    description = "RA-TLS (TLS ends inside the enclave)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.client_cidrs
  }

  # Upstream nodes and collateral services, through shroud-host egress (which holds the
  # allow list of destinations).
  egress {
    description = "HTTPS to upstreams and collateral services"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "shroud" {
  ami                    = data.aws_ami.al2023.id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_id
  vpc_security_group_ids = [aws_security_group.shroud.id]

  enclave_options {
    enabled = true
  }

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    encrypted   = true
    volume_size = 30
  }

  user_data = file("${path.module}/user-data.sh")

  tags = {
    Name = "shroud-gateway"
  }
}
