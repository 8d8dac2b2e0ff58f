#!/usr/bin/env bash
# From an AWS account to a running service: build the image, push it to ECR, deploy the stack.
# Every command is printed before the first one runs; DRY_RUN=1 prints them and stops.
#
#   AWS_REGION=eu-west-3 VPC_ID=vpc-0abc SUBNET_IDS=subnet-1,subnet-2 SOURCE_BUCKET=my-photos \
#     make deploy
#
# Required: AWS_REGION (or AWS_DEFAULT_REGION), VPC_ID, SUBNET_IDS, SOURCE_BUCKET.
# Optional: STACK (archiver), VERSION (git describe), ACCOUNT (from aws sts), PARAMETERS (more
#   Name=Value overrides for the template, e.g. "MaxTasks=20 ExistingSourceQueueUrl=https://..."),
#   BUILDER (docker if it answers, else podman through docker/podman/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "deploy: $*" >&2; exit 2; }
# The project's .envrc (direnv loads it here) points the aws CLI at the local endpoint with
# moto's test credentials: deploying through it would reach LocalStack, or fail obscurely.
if [ -n "${AWS_ENDPOINT_URL:-}" ] || [ "${AWS_ACCESS_KEY_ID:-}" = test ]; then
  fail "this shell points at a local endpoint (AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-}," \
    "AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-}, as the project's .envrc sets):" \
    "unset AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY first"
fi
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
[ -n "$region" ] || fail "AWS_REGION (or AWS_DEFAULT_REGION) is required"
for name in VPC_ID SUBNET_IDS SOURCE_BUCKET; do
  [ -n "${!name:-}" ] || fail "$name is required (see docs/deploy.md)"
done
stack=${STACK:-archiver}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo latest)}
if [ -z "${ACCOUNT:-}" ]; then
  ACCOUNT=$(aws sts get-caller-identity --query Account --output text) \
    || fail "cannot reach AWS to learn the account (aws sts get-caller-identity); set ACCOUNT"
fi
if [ -z "${BUILDER:-}" ]; then
  if docker info >/dev/null 2>&1; then BUILDER=docker; else BUILDER=podman; fi
fi
case $BUILDER in docker | podman) ;; *) fail "BUILDER must be docker or podman" ;; esac

registry="$ACCOUNT.dkr.ecr.$region.amazonaws.com"
image="$registry/$stack:$version"
read -r -a extra <<<"${PARAMETERS:-}"

repository=(aws ecr describe-repositories --region "$region" --repository-names "$stack")
create=(aws ecr create-repository --region "$region" --repository-name "$stack"
  --image-scanning-configuration scanOnPush=true)
if [ "$BUILDER" = docker ]; then
  build=(docker build --platform linux/amd64 --tag "$image" .)  # the task runs X86_64
else
  build=(bash docker/podman/build.sh "$image")
fi
password=(aws ecr get-login-password --region "$region")
login=("$BUILDER" login --username AWS --password-stdin "$registry")
push=("$BUILDER" push "$image")
deploy=(aws cloudformation deploy --region "$region" --stack-name "$stack"
  --template-file deploy/cloudformation/archiver.yaml --capabilities CAPABILITY_IAM
  --no-fail-on-empty-changeset --parameter-overrides "ImageUri=$image" "VpcId=$VPC_ID"
  "SubnetIds=$SUBNET_IDS" "SourceBucketName=$SOURCE_BUCKET" "${extra[@]}")
outputs=(aws cloudformation describe-stacks --region "$region" --stack-name "$stack"
  --query "Stacks[0].Outputs" --output table)

show() { printf '%q ' "$@"; }
echo "deploy: $image to stack $stack in $region, account $ACCOUNT:"
echo "  1. $(show "${repository[@]}")|| $(show "${create[@]}")"
echo "  2. $(show "${build[@]}")"
echo "  3. $(show "${password[@]}")| $(show "${login[@]}")"
echo "  4. $(show "${push[@]}")"
echo "  5. $(show "${deploy[@]}")"
echo "  6. $(show "${outputs[@]}")"
if [ "${DRY_RUN:-0}" = 1 ]; then exit 0; fi

run() { echo "+ $(show "$@")" >&2; "$@"; }
"${repository[@]}" >/dev/null 2>&1 || run "${create[@]}" >/dev/null
run "${build[@]}"
"${password[@]}" | run "${login[@]}"
run "${push[@]}"
run "${deploy[@]}"
run "${outputs[@]}"
