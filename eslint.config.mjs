// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// The determinism fence (docs/architecture.md): workflow code is replayed by Temporal and
// bundled into a sandbox, so it may only import the workflow SDK, sibling workflow files
// and the pure modules under src/shared/. Anything else is allowed as `import type` only.
const workflowSafeImports = {
  regex: '^(?!(@temporalio/(workflow|common)|\\./.+|\\.\\./src/shared/.+)$)',
  allowTypeImports: true,
  message:
    'workflows/ is deterministic code: import only @temporalio/workflow, @temporalio/common, sibling workflow files and src/shared/ (other modules as `import type`).',
};
// src/shared/ is imported by workflows, so it obeys the same fence.
const sharedSafeImports = {
  regex: '^(?!(@temporalio/common|\\./.+)$)',
  allowTypeImports: true,
  message: 'src/shared/ is bundled into workflows: import only @temporalio/common and siblings.',
};

// The layers (docs/architecture.md): the library under src/ is used by activities/,
// workflows/ (src/shared/ only) and the entry points under src/app/; it never reaches up to
// them. Types are allowed, as workflows use activity types.
const libraryImports = {
  group: ['**/activities', '**/activities/**', '**/workflows', '**/workflows/**', '**/app/**'],
  allowTypeImports: true,
  message:
    'the library (src/) does not import activities/, workflows/ or src/app/: they are built on it, not it on them.',
};

export default tseslint.config(
  { ignores: ['dist/**', 'coverage/**', '.stack/**', 'node_modules/**', 'temporal/go/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // "Forgetting to await Activities and Workflow APIs is bad" (temporalio samples).
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [workflowSafeImports] }],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/app/**', 'src/shared/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [libraryImports] }],
    },
  },
  {
    files: ['src/shared/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [sharedSafeImports] }],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['bin/**/*.js', 'test/**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: globals.node },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // chai-less assertions on awaited values read better with non-null assertions in tests.
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
