// Original file: proto/persona/v1/persona.proto


export interface WorkflowStarted {
  'workflow_id'?: (string);
}

export interface WorkflowStarted__Output {
  'workflow_id'?: (string);
}
