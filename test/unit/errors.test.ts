import assert from 'node:assert/strict';
import * as errors from '../../src/shared/errors';

describe('error classes', () => {
  type ErrorClass = new (message: string) => errors.ArchiverError;
  const classes = (Object.values(errors) as unknown[]).filter(
    (value): value is ErrorClass =>
      typeof value === 'function' && value.prototype instanceof errors.ArchiverError,
  );

  it('lists exactly the non-retryable classes in NON_RETRYABLE_ERROR_TYPES', () => {
    // Temporal matches retry policies on the class name, so the list and the classes must agree.
    const nonRetryable = classes.filter((C) => !new C('x').retryable).map((C) => C.name);
    assert.deepEqual([...errors.NON_RETRYABLE_ERROR_TYPES].sort(), nonRetryable.sort());
  });

  it('gives each class a distinct code and its own class name as error name', () => {
    const instances = classes.map((C) => new C('x'));
    assert.equal(new Set(instances.map((e) => e.code)).size, instances.length);
    for (const e of instances) assert.equal(e.name, e.constructor.name);
  });
});
