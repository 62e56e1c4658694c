/** Task queues. The worker polls these; the api starts workflows on them. */
export const PERSONA_TASK_QUEUE = 'persona';
