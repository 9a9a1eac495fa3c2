/**
 * @process model-trainer/train-model
 * @description The seed's model-trainer step as a babysitter process: one `kind: 'agent'` task
 * whose input is the seed's task JSON (train_model) and whose result is the seed's output JSON.
 * The SDK does not execute agent tasks: harness.mjs plays the agent's side.
 * @inputs { trainDataPath: string, targetColumn: string, features?: string[], modelType?: string,
 *   algorithm?: string, validationStrategy?: object, nTrials?: number, timeout?: number,
 *   experimentName?: string, trackingUri?: string }
 * @outputs the model-trainer result: { success, modelPath, metrics, bestParams, crossValidation,
 *   experimentRun, trainingTime, artifacts }
 */

import { defineTask } from '@a5c-ai/babysitter-sdk';

/** The output keys of the project's task contract (docs/task_schema.json). */
export const OUTPUT_KEYS = [
  'success',
  'modelPath',
  'metrics',
  'bestParams',
  'crossValidation',
  'experimentRun',
  'trainingTime',
  'artifacts',
  'positiveClass',
];

/** Defined like the seed library's agent tasks (kind, agent.prompt, outputSchema, io, labels). */
export const trainModelTask = defineTask('train-model', (args, taskCtx) => ({
  kind: 'agent',
  title: `Train a ${args.modelType} model (${args.algorithm}) on ${args.trainDataPath}`,
  agent: {
    name: 'model-trainer',
    prompt: {
      role: 'ML engineer who trains tabular models with the model-trainer skill',
      task: 'Train a model as the task JSON asks and return the result JSON',
      context: args,
      instructions: [
        `1. Read the task JSON at tasks/${taskCtx.effectId}/input.json`,
        '2. Run the training it describes: validation, hyperparameter search, final fit, tracking',
        '3. Return the result JSON: success, modelPath, metrics, bestParams, crossValidation, ' +
          'experimentRun, trainingTime, artifacts (on failure: success false, error, remediation)',
      ],
      outputFormat: 'JSON object matching the output schema',
    },
    outputSchema: {
      type: 'object',
      required: ['success'],
      properties: {
        success: { type: 'boolean' },
        modelPath: { type: 'string' },
        metrics: { type: 'object' },
        bestParams: { type: 'object' },
        crossValidation: { type: 'object' },
        experimentRun: { type: 'object' },
        trainingTime: { type: 'number' },
        artifacts: { type: 'array', items: { type: 'string' } },
        error: { type: 'string' },
        remediation: { type: 'string' },
      },
    },
  },
  io: {
    inputJsonPath: `tasks/${taskCtx.effectId}/input.json`,
    outputJsonPath: `tasks/${taskCtx.effectId}/result.json`,
  },
  labels: ['agent', 'model-training', 'model-trainer'],
}));

export async function process(inputs, ctx) {
  const {
    trainDataPath,
    targetColumn,
    features,
    modelType = 'classification',
    algorithm = 'random_forest',
    validationStrategy = { type: 'stratified_kfold', folds: 3, shuffle: true },
    nTrials = 3,
    timeout = 60,
    experimentName = 'babysitter-agent-client',
    trackingUri,
  } = inputs;

  // The seed's task JSON, in the shape of the seed's own Input Specification.
  const taskJson = {
    task: 'train_model',
    modelType,
    algorithm,
    trainDataPath,
    targetColumn,
    ...(features ? { features } : {}),
    validationStrategy,
    hyperparameterSearch: { enabled: true, nTrials, timeout, sampler: 'tpe', pruner: 'median' },
    experimentTracking: {
      enabled: true,
      experimentName,
      ...(trackingUri ? { trackingUri } : {}),
    },
    options: { earlyStoppingRounds: 10, verbosity: 1 },
  };

  ctx.log('info', `model-trainer: ${modelType}/${algorithm} on ${trainDataPath}`);
  const result = await ctx.task(trainModelTask, taskJson);

  if (result && result.success === true) {
    const missing = OUTPUT_KEYS.filter((key) => !(key in result));
    if (missing.length) {
      throw new Error(`the agent's result lacks the contract's keys: ${missing.join(', ')}`);
    }
  }
  return result;
}
