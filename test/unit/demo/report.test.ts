/** The demo's narration (tools/demo/report.ts): what each step prints, how a failure names its step, `short`. */
import { describe, expect, it } from 'vitest';
import { Narrator, STEPS, StepFailed, short } from '../../../tools/demo/report.js';

function narrator(): { narrator: Narrator; lines: string[] } {
  const lines: string[] = [];
  return { narrator: new Narrator((line) => lines.push(line)), lines };
}

/** What main.ts does with a failure: blame the step, then say FAILED in it. */
async function reportFailure(n: Narrator, work: () => Promise<unknown>): Promise<StepFailed> {
  try {
    await work();
  } catch (err) {
    const failure = err as StepFailed;
    if (failure.step !== 'setup') n.begin(failure.step);
    n.say(`FAILED: ${failure.message}`);
    return failure;
  }
  throw new Error('the work did not fail');
}

describe('Narrator', () => {
  it('tags lines before any step as setup, and lines in a step with its number', () => {
    const { narrator: n, lines } = narrator();
    expect(n.current).toBe('setup');
    n.say('5 nodes ready');
    n.begin(2);
    n.say('browser → backend');
    n.plain('a plain line');
    expect(lines).toEqual(['setup  5 nodes ready', `\nstep 2: ${STEPS[2]}`, '  [2] browser → backend', 'a plain line']);
  });

  it('prints the heading of a step only the first time it is entered', () => {
    const { narrator: n, lines } = narrator();
    n.begin(1);
    n.begin(2);
    n.begin(1);
    n.say('again');
    expect(lines).toEqual([`\nstep 1: ${STEPS[1]}`, `\nstep 2: ${STEPS[2]}`, '  [1] again']);
    expect(n.current).toBe(1);
  });

  it('names all five steps of DESIGN §2', () => {
    expect(Object.keys(STEPS)).toEqual(['1', '2', '3', '4', '5']);
  });

  it('step() enters the step and returns what the work returns', async () => {
    const { narrator: n, lines } = narrator();
    const value = await n.step(3, async () => {
      n.say('asked the secret server');
      return 42;
    });
    expect(value).toBe(42);
    expect(lines).toEqual([`\nstep 3: ${STEPS[3]}`, '  [3] asked the secret server']);
  });

  it('a failing step rethrows as StepFailed naming the step, with the reason and the cause', async () => {
    const { narrator: n } = narrator();
    const cause = new Error('wrong username or password');
    const failed = n.step(1, async () => {
      throw cause;
    });
    await expect(failed).rejects.toBeInstanceOf(StepFailed);
    await expect(failed).rejects.toMatchObject({
      name: 'StepFailed',
      step: 1,
      message: 'wrong username or password',
      cause,
    });
  });

  it('prints "[n] FAILED: <reason>" in the failed step when reported as main.ts does', async () => {
    const { narrator: n, lines } = narrator();
    await n.step(1, async () => 'ok');
    const failure = await reportFailure(n, () =>
      n.step(2, async () => {
        throw new Error('POST /notes answered 401');
      }),
    );
    expect(failure.step).toBe(2);
    expect(lines.at(-1)).toBe('  [2] FAILED: POST /notes answered 401');
  });

  it('blames the step running when the work fails, when the work moved on to a later step', async () => {
    const { narrator: n } = narrator();
    const failed = n.step(2, async () => {
      n.begin(4);
      throw new Error('audience not registered');
    });
    await expect(failed).rejects.toMatchObject({ step: 4, message: 'audience not registered' });
  });

  it('passes a StepFailed through unchanged', async () => {
    const { narrator: n } = narrator();
    const own = new StepFailed(5, 'the data differs');
    await expect(
      n.step(2, async () => {
        throw own;
      }),
    ).rejects.toBe(own);
  });

  it('a failure in the setup is reported as setup', async () => {
    const { narrator: n, lines } = narrator();
    const failure = await reportFailure(n, async () => {
      throw new StepFailed(n.current, 'port in use');
    });
    expect(failure.step).toBe('setup');
    expect(lines).toEqual(['setup  FAILED: port in use']);
  });
});

describe('short', () => {
  it('keeps an id of at most 8 characters as it is', () => {
    expect(short('')).toBe('');
    expect(short('abcdefgh')).toBe('abcdefgh');
  });

  it('cuts a longer id to 8 characters and an ellipsis', () => {
    expect(short('abcdefghi')).toBe('abcdefgh…');
    expect(short('Qm1x2y3z4w5v6u7t8s9r')).toBe('Qm1x2y3z…');
  });

  it('takes another length', () => {
    expect(short('abcdefghi', 3)).toBe('abc…');
    expect(short('abc', 3)).toBe('abc');
  });
});
