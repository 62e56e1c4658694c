import { describe, expect, it } from 'vitest';
import { formalNames, nicknameGroups, sameGivenName } from './nicknames';

describe('sameGivenName', () => {
  it.each([
    ['bill', 'william'],
    ['Bill', 'WILLIAM'],
    ['liam', 'william'],
    ['billy', 'will'],
    ['bob', 'robert'],
    ['robbie', 'bobby'],
    ['liz', 'elizabeth'],
    ['beth', 'betty'],
    ['libby', 'eliza'],
    ['kate', 'catherine'],
    ['kathryn', 'katie'],
    ['cathy', 'katherine'],
    ['maggie', 'margaret'],
    ['peggy', 'meg'],
    ['lachie', 'lachlan'],
    ['jaiden', 'jayden'],
    ['tahlia', 'talia'],
    ['chris', 'christine'],
    ['chris', 'christopher'],
    ['al', 'albert'],
    ['al', 'alan'],
    ['Zoë', 'zoe'],
  ])('%s and %s are one name', (a, b) => {
    expect(sameGivenName(a, b)).toBe(true);
    expect(sameGivenName(b, a)).toBe(true);
  });

  it.each([
    ['robert', 'albert'],
    ['christopher', 'christine'],
    ['john', 'jonathan'],
    ['william', 'robert'],
    ['kate', 'margaret'],
  ])('%s and %s are not (no chains of groups)', (a, b) => {
    expect(sameGivenName(a, b)).toBe(false);
    expect(sameGivenName(b, a)).toBe(false);
  });

  it('takes a name equal to itself once normalised, in the table or not', () => {
    expect(sameGivenName('Zebedee', 'zebedee')).toBe(true);
    expect(sameGivenName('Mary-Ann', 'maryann')).toBe(true);
    expect(sameGivenName('mary ann', 'Mary-Ann')).toBe(true);
  });

  it('is false when either side is empty', () => {
    expect(sameGivenName('', '')).toBe(false);
    expect(sameGivenName('kate', '')).toBe(false);
    expect(sameGivenName('  ', 'kate')).toBe(false);
  });
});

describe('nicknameGroups', () => {
  const groups = nicknameGroups();

  it('holds 150 groups and more, each of lower-case ASCII words, none twice in a group', () => {
    expect(groups.length).toBeGreaterThanOrEqual(150);
    for (const group of groups) {
      expect(group.length).toBeGreaterThanOrEqual(2);
      for (const name of group) expect(name).toMatch(/^[a-z]+$/);
      expect(new Set(group).size).toBe(group.length);
    }
  });

  it('has no group twice', () => {
    const keys = groups.map((g) => [...g].sort().join(' '));
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('puts every name of a group with every other', () => {
    for (const group of groups) for (const name of group) expect(sameGivenName(group[0]!, name)).toBe(true);
  });

  it('cannot be changed', () => {
    expect(Object.isFrozen(groups)).toBe(true);
    expect(Object.isFrozen(groups[0])).toBe(true);
  });

  it('gives the formal names of the groups a name is in, none for a name in no group', () => {
    expect(formalNames('Bill')).toEqual(['william']);
    expect(formalNames('william')).toEqual(['william']);
    expect(formalNames('Em')).toEqual(expect.arrayContaining(['emily', 'emma']));
    expect(formalNames('Zxq')).toEqual([]);
    expect(formalNames('')).toEqual([]);
  });
});
