# The small VPC the Glue jobs run in.
#
# A Glue job with a connection gets its network interfaces in the connection's subnet, and then
# every byte it sends leaves through that subnet: JDBC to the databases, S3, the Glue Data Catalog,
# CloudWatch, KMS, Secrets Manager. So the private subnet needs
#   - an S3 gateway endpoint (free, and keeps lake traffic off the NAT),
#   - a Secrets Manager interface endpoint (the credentials never cross the NAT),
#   - a NAT gateway for the rest: the databases (ToteSys is reached by its host name, typically
#     an RDS endpoint outside this VPC) and the other AWS APIs. Its Elastic IP is the one address
#     the databases see, so it can be allow-listed (output nat_public_ip).
# To drop the NAT (a database reachable by peering, no internet), add interface endpoints for
# glue, logs, monitoring, kms and sts to local.interface_endpoints and remove the NAT resources.

data "aws_availability_zones" "available" {
  state = "available"

  #checkov:skip=CKV_AWS_394:Only one zone is used: var.availability_zone if set, else the first name returned. Zones AWS adds later get later letters and do not move it, and nothing iterates over the set.
}

locals {
  availability_zone   = coalesce(var.availability_zone, data.aws_availability_zones.available.names[0])
  private_subnet_cidr = cidrsubnet(var.vpc_cidr, 24 - tonumber(split("/", var.vpc_cidr)[1]), 1)
  public_subnet_cidr  = cidrsubnet(var.vpc_cidr, 24 - tonumber(split("/", var.vpc_cidr)[1]), 0)
  database_ports      = toset([for db in local.databases : tostring(db.port)])
  interface_endpoints = toset(["secretsmanager"])
}

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true # private DNS of the interface endpoints needs both

  tags = { Name = "${var.name_prefix}-etl" }
}

# No rules: nothing may use the default security group by accident.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
}

resource "aws_flow_log" "this" {
  vpc_id               = aws_vpc.this.id
  traffic_type         = "ALL"
  log_destination_type = "s3"
  log_destination      = "${aws_s3_bucket.access_logs.arn}/vpc-flow-logs/"

  depends_on = [aws_s3_bucket_policy.access_logs]
}

resource "aws_subnet" "private" {
  vpc_id                  = aws_vpc.this.id
  cidr_block              = local.private_subnet_cidr
  availability_zone       = local.availability_zone
  map_public_ip_on_launch = false

  tags = { Name = "${var.name_prefix}-etl-private" }
}

resource "aws_subnet" "public" {
  vpc_id            = aws_vpc.this.id
  cidr_block        = local.public_subnet_cidr
  availability_zone = local.availability_zone
  # Only the NAT gateway lives here, with its own Elastic IP.
  map_public_ip_on_launch = false

  tags = { Name = "${var.name_prefix}-etl-public" }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${var.name_prefix}-etl" }
}

resource "aws_eip" "nat" {
  domain = "vpc"

  tags = { Name = "${var.name_prefix}-etl-nat" }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public.id

  tags = { Name = "${var.name_prefix}-etl" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }

  tags = { Name = "${var.name_prefix}-etl-public" }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.this.id
  }

  tags = { Name = "${var.name_prefix}-etl-private" }
}

resource "aws_route_table_association" "private" {
  subnet_id      = aws_subnet.private.id
  route_table_id = aws_route_table.private.id
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private.id]

  tags = { Name = "${var.name_prefix}-etl-s3" }
}

resource "aws_vpc_endpoint" "interface" {
  for_each = local.interface_endpoints

  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = [aws_subnet.private.id]
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true

  tags = { Name = "${var.name_prefix}-etl-${each.key}" }
}

# The jobs' security group. Glue requires a self-referencing rule for all TCP ports so that the
# driver and executors (all in this group) can talk to each other.
resource "aws_security_group" "glue" {
  name        = "${var.name_prefix}-glue-jobs"
  description = "Glue job workers of the Terrific Totes ETL"
  vpc_id      = aws_vpc.this.id

  #checkov:skip=CKV2_AWS_5:Attached through the Glue connections' physical_connection_requirements (glue.tf), which checkov does not follow; the jobs' ENIs get it at run time.

  ingress {
    description = "Glue requires all TCP between the workers of one job"
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    self        = true
  }

  egress {
    description = "All TCP between the workers of one job"
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    self        = true
  }

  egress {
    description = "HTTPS to AWS APIs: S3 via its gateway endpoint, Secrets Manager via its interface endpoint, the rest via the NAT"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  dynamic "egress" {
    for_each = local.database_ports

    content {
      description = "PostgreSQL (ToteSys, warehouse) on port ${egress.value}"
      from_port   = tonumber(egress.value)
      to_port     = tonumber(egress.value)
      protocol    = "tcp"
      cidr_blocks = var.database_cidr_blocks
    }
  }

  tags = { Name = "${var.name_prefix}-glue-jobs" }
}

resource "aws_security_group" "endpoints" {
  name        = "${var.name_prefix}-vpc-endpoints"
  description = "Interface VPC endpoints used by the Glue jobs"
  vpc_id      = aws_vpc.this.id

  ingress {
    description     = "HTTPS from the Glue jobs"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    security_groups = [aws_security_group.glue.id]
  }

  tags = { Name = "${var.name_prefix}-vpc-endpoints" }
}
