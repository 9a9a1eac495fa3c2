#!/usr/bin/env node
/**
 * A babysitter agent client for model-trainer: the seed's SDK (@a5c-ai/babysitter-sdk, its
 * `babysitter` CLI) runs train-model.process.mjs, and this script plays the agent's side the way
 * the SDK's orchestration instructions (`babysitter instructions:orchestrate`) tell an external
 * agent to: run:create, then run:iterate / task:list --pending / do the effect / task:post until
 * the run completes.
 *
 * Each pending `kind: 'agent'` effect is done by model-trainer itself: the effect's task JSON is
 * staged at the task's `io.inputJsonPath` (tasks/<effectId>/input.json) the way the SDK's own
 * runner stages inputs (`JSON.stringify(taskDef.inputs)`, or a copy of the spilled `inputsRef`
 * blob), and `model-trainer task <that file> --output tasks/<effectId>/output.json` runs with the
 * run's folder as its working directory. Its result JSON is posted back with
 * `task:post --status ok --value tasks/<effectId>/output.json`, and the SDK writes the effect's
 * result.json from it (it owns that file). An agent reports a failed training as a result with
 * success false, so only a trainer that writes no result JSON is posted as an error.
 *
 * Usage:
 *   node harness.mjs --workspace DIR --train-data CSV --target COLUMN [--features a,b,...]
 *     [--run-id ID] [--process-input KEY=JSON ...] [-- TRAINER ARGV with {input} and {output}]
 * The trainer argv defaults to `model-trainer task {input} --output {output}`. The run's summary
 * (state, completion proof, output, the effects done) is printed as JSON on stdout; progress goes
 * to stderr. Exit code 0 only when the run completed.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, copyFileSync, openSync, closeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BABYSITTER = path.join(HERE, 'node_modules', '@a5c-ai', 'babysitter-sdk', 'dist', 'cli', 'main.js');
const PROCESS_ENTRY = path.join(HERE, 'train-model.process.mjs');
const PROCESS_ID = 'model-trainer/train-model';
const MAX_ITERATIONS = 20;

function parseArgs(argv) {
  const options = { features: null, runId: null, processInputs: {}, trainer: null };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      i += 1;
      return argv[i];
    };
    if (arg === '--') {
      options.trainer = argv.slice(i + 1);
      break;
    } else if (arg === '--workspace') options.workspace = path.resolve(next());
    else if (arg === '--train-data') options.trainData = path.resolve(next());
    else if (arg === '--target') options.target = next();
    else if (arg === '--features') options.features = next().split(',').filter(Boolean);
    else if (arg === '--run-id') options.runId = next();
    else if (arg === '--process-input') {
      const [key, ...rest] = next().split('=');
      options.processInputs[key] = JSON.parse(rest.join('='));
    } else throw new Error(`unknown argument ${arg}`);
  }
  for (const required of ['workspace', 'trainData', 'target']) {
    if (!options[required]) throw new Error(`--${required.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is required`);
  }
  if (!options.trainer || options.trainer.length === 0) {
    options.trainer = ['model-trainer', 'task', '{input}', '--output', '{output}'];
  }
  return options;
}

function log(message) {
  process.stderr.write(`[agent-client] ${message}\n`);
}

/** One `babysitter` CLI command, run as an agent would; its --json answer. `task:post --status
 * error` commits the error and then exits 1, hence `expectFailure`. */
function babysitter(args, cwd, { expectFailure = false } = {}) {
  const result = spawnSync(process.execPath, [BABYSITTER, ...args, '--json'], {
    cwd,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  if (result.status !== 0 && !(expectFailure && result.stdout.trim())) {
    throw new Error(
      `babysitter ${args[0]} exited ${result.status}:\n${result.stdout}\n${result.stderr}`,
    );
  }
  const text = result.stdout.trim();
  try {
    return JSON.parse(text);
  } catch {
    // Be tolerant of a line of chatter before the JSON document.
    const start = text.indexOf('{');
    if (start >= 0) return JSON.parse(text.slice(start));
    throw new Error(`babysitter ${args[0]} did not answer JSON:\n${text}`);
  }
}

function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** Stage the effect's input at io.inputJsonPath as the SDK's runner does; its path in the run. */
function stageInput(runDir, taskDef) {
  const io = taskDef.io ?? {};
  const inputRef = io.inputJsonPath ?? `tasks/${taskDef.effectId}/input.json`;
  const inputAbs = path.resolve(runDir, inputRef);
  mkdirSync(path.dirname(inputAbs), { recursive: true });
  if (!existsSync(inputAbs)) {
    if (taskDef.inputsRef) copyFileSync(path.resolve(runDir, taskDef.inputsRef), inputAbs);
    else writeFileSync(inputAbs, `${JSON.stringify(taskDef.inputs ?? {})}\n`, 'utf8');
  }
  return inputRef;
}

/** Do one agent effect with model-trainer and post its result back; a record of what was done. */
function performAgentEffect(runDir, pending, trainer) {
  const { effectId } = pending;
  const taskDef = readJson(path.join(runDir, pending.taskDefRef ?? `tasks/${effectId}/task.json`));
  const inputRef = stageInput(runDir, taskDef);
  const taskDir = `tasks/${effectId}`;
  const valueRef = `${taskDir}/output.json`;
  const stdoutRef = `${taskDir}/model-trainer.stdout.log`;
  const stderrRef = `${taskDir}/model-trainer.stderr.log`;
  const argv = trainer.map((part) => part.replaceAll('{input}', inputRef).replaceAll('{output}', valueRef));
  log(`effect ${effectId} (${taskDef.agent?.name ?? 'agent'}): ${argv.join(' ')}  [cwd ${runDir}]`);

  const startedAt = new Date().toISOString();
  const out = openSync(path.join(runDir, stdoutRef), 'w');
  const err = openSync(path.join(runDir, stderrRef), 'w');
  let run;
  try {
    run = spawnSync(argv[0], argv.slice(1), { cwd: runDir, stdio: ['ignore', out, err], env: process.env });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  const finishedAt = new Date().toISOString();
  const exitCode = run.error ? null : run.status;
  log(`effect ${effectId}: model-trainer exited ${exitCode ?? run.error}`);

  const valueAbs = path.join(runDir, valueRef);
  let value = null;
  try {
    value = readJson(valueAbs);
  } catch {
    value = null;
  }
  const common = ['--stdout-file', stdoutRef, '--stderr-file', stderrRef, '--started-at', startedAt, '--finished-at', finishedAt];
  let posted;
  if (value !== null && typeof value === 'object') {
    posted = babysitter(['task:post', runDir, effectId, '--status', 'ok', '--value', valueRef, ...common], runDir);
  } else {
    const errorRef = `${taskDir}/error.json`;
    const reason = run.error ? String(run.error) : `model-trainer exited ${exitCode} without a result JSON`;
    writeFileSync(
      path.join(runDir, errorRef),
      `${JSON.stringify({ name: 'ModelTrainerFailed', message: reason, exitCode }, null, 2)}\n`,
    );
    posted = babysitter(['task:post', runDir, effectId, '--status', 'error', '--error', errorRef, ...common], runDir, {
      expectFailure: true,
    });
  }
  return {
    effectId,
    taskId: pending.taskId,
    kind: pending.kind,
    agent: taskDef.agent?.name ?? null,
    inputJsonPath: path.resolve(runDir, inputRef),
    valuePath: valueAbs,
    resultJsonPath: path.resolve(runDir, posted.resultRef ?? `${taskDir}/result.json`),
    exitCode,
    posted: posted.status,
  };
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const workspace = options.workspace;
  mkdirSync(workspace, { recursive: true });
  // Keep the SDK's user-level state and logs (~/.a5c by default) in the workspace.
  process.env.BABYSITTER_LOG_DIR ??= path.join(workspace, '.a5c', 'logs');
  process.env.BABYSITTER_GLOBAL_STATE_DIR ??= path.join(workspace, '.a5c');

  const runsDir = path.join(workspace, 'runs');
  const runId = options.runId ?? `model-trainer-${Date.now().toString(36)}`;
  const runDir = path.join(runsDir, runId);
  const trainData = path.join(runDir, path.basename(options.trainData));

  // The process's inputs: the seed's task JSON is built from these, data path and target
  // substituted; MLflow's store lives in the run's folder too.
  const processInputs = {
    trainDataPath: trainData,
    targetColumn: options.target,
    ...(options.features ? { features: options.features } : {}),
    trackingUri: `sqlite:///${path.join(runDir, 'mlflow.db')}`,
    ...options.processInputs,
  };
  const inputsFile = path.join(workspace, `${runId}.inputs.json`);
  writeFileSync(inputsFile, `${JSON.stringify(processInputs, null, 2)}\n`);

  const created = babysitter(
    ['run:create', '--process-id', PROCESS_ID, '--entry', `${PROCESS_ENTRY}#process`, '--inputs', inputsFile,
      '--runs-dir', runsDir, '--run-id', runId, '--non-interactive'],
    workspace,
  );
  log(`run ${created.runId} created in ${created.runDir}`);
  copyFileSync(options.trainData, trainData);

  const effects = [];
  let last = null;
  for (let iteration = 1; iteration <= MAX_ITERATIONS; iteration += 1) {
    last = babysitter(['run:iterate', runDir, '--iteration', String(iteration)], workspace);
    log(`iteration ${iteration}: ${last.status} (${last.reason ?? last.action ?? ''})`);
    if (last.status === 'completed' || last.status === 'failed') break;
    const { tasks = [] } = babysitter(['task:list', runDir, '--pending'], workspace);
    for (const pending of tasks) {
      if (pending.kind !== 'agent') {
        throw new Error(`effect ${pending.effectId} is a ${pending.kind} task: this client only answers agent tasks`);
      }
      effects.push(performAgentEffect(runDir, pending, options.trainer));
    }
  }

  const status = babysitter(['run:status', runDir], workspace);
  const outputRef = status.lastEvent?.data?.outputRef;
  const output = outputRef && existsSync(path.join(runDir, outputRef)) ? readJson(path.join(runDir, outputRef)) : null;
  const summary = {
    runId,
    runDir,
    state: status.state,
    completionProof: status.completionProof ?? null,
    lastIteration: last,
    output,
    effects,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  return status.state === 'completed' ? 0 : 1;
}

try {
  process.exitCode = main();
} catch (error) {
  log(error instanceof Error ? error.stack ?? error.message : String(error));
  process.exitCode = 2;
}
