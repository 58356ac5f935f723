# The image tests every stage runs last (packer/common/image-tests), loaded by each stage folder
# through its common-image-tests.pkr.hcl symlink. HCL cannot share provisioner blocks: each stage
# ends with the same two, an upload of local.image_tests_source and a shell running
# local.image_tests_inline with local.image_tests_env plus the inputs of its suites.

variable "image_test_suites" {
  type        = list(string)
  description = "Image test suites the stage runs before the AMI is made (base, jira, custom), from the stage's definition in stages/."
  validation {
    condition     = length(var.image_test_suites) > 0
    error_message = "The image_test_suites variable must name at least one suite of packer/common/image-tests (base, jira, custom)."
  }
}

variable "image_tests_count" {
  type        = number
  description = "How many checks image_test_suites hold, counted by the program from the suite files; the tests fail unless exactly this many ran, and the AMI is tagged with it."
  validation {
    condition     = var.image_tests_count > 0 && floor(var.image_tests_count) == var.image_tests_count
    error_message = "The image_tests_count variable must be the number of checks in image_test_suites (a whole number above 0); the program passes it."
  }
}

locals {
  # Uploaded as the login user into a fresh folder, run as root, removed again whatever the outcome
  # (it runs after image-cleanup.sh, so nothing else would take it off the image).
  image_tests_source = "${path.root}/../common/image-tests"
  image_tests_dir    = "/tmp/image-tests"
  image_tests_inline = [
    "status=0",
    "bash ${local.image_tests_dir}/run.sh --stage '${local.stage}' --expect ${var.image_tests_count} ${join(" ", var.image_test_suites)} || status=$?",
    "rm -rf ${local.image_tests_dir}",
    "exit $status",
  ]
  image_tests_env = [
    "SSH_USERNAME=${var.ssh_username}",
  ]
}
