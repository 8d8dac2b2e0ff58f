#!/usr/bin/env bash
# LocalStack ready hook: the buckets and queues of the local flow (same names as `archiver dev`).
set -euo pipefail

awslocal s3 mb s3://source-images
awslocal s3 mb s3://zip-storage
# Backstop for uploads a killed worker could not abort.
awslocal s3api put-bucket-lifecycle-configuration --bucket zip-storage --lifecycle-configuration \
  '{"Rules": [{"ID": "abort-incomplete-uploads", "Status": "Enabled", "Filter": {"Prefix": ""},
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]}'

dlq_url=$(awslocal sqs create-queue --queue-name input-queue-dlq --query QueueUrl --output text)
dlq_arn=$(awslocal sqs get-queue-attributes --queue-url "$dlq_url" \
  --attribute-names QueueArn --query Attributes.QueueArn --output text)
awslocal sqs create-queue --queue-name input-queue --attributes "{
  \"VisibilityTimeout\": \"300\",
  \"RedrivePolicy\": \"{\\\"deadLetterTargetArn\\\":\\\"${dlq_arn}\\\",\\\"maxReceiveCount\\\":\\\"3\\\"}\"
}"
awslocal sqs create-queue --queue-name output-queue
# A password for encrypted archives: "archive": {"encryption": {"secret": "archiver/demo"}}.
awslocal secretsmanager create-secret --name archiver/demo --secret-string "local demo password"
echo "archiver resources ready"
