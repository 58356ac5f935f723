import { LocalWorkspace, type LocalWorkspaceOptions, type PulumiCommand, type Stack } from "@pulumi/pulumi/automation/index.js";

/** The part of an Automation API stack that the driver uses: what tests stub. */
export type StackHandle = Pick<Stack, "name" | "up" | "preview" | "destroy" | "outputs">;

export interface StackRequest {
  stackName: string;
  /** Project root: Pulumi.yaml and Pulumi.<stack>.yaml. */
  root: string;
  /** false: the stack must exist already (outputs, destroy); never create one by accident. */
  create: boolean;
  envVars: Record<string, string>;
  secretsProvider?: string;
  pulumiCommand?: PulumiCommand;
}

export type StackFactory = (request: StackRequest) => Promise<StackHandle>;

/** The real workspace layer: a LocalWorkspace on the project folder (a local program, not inline). */
export const localStackFactory: StackFactory = async (request) => {
  const options: LocalWorkspaceOptions = {
    workDir: request.root,
    envVars: request.envVars,
    ...(request.secretsProvider ? { secretsProvider: request.secretsProvider } : {}),
    ...(request.pulumiCommand ? { pulumiCommand: request.pulumiCommand } : {}),
  };
  const args = { stackName: request.stackName, workDir: request.root };
  return request.create
    ? LocalWorkspace.createOrSelectStack(args, options)
    : LocalWorkspace.selectStack(args, options);
};
