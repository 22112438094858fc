// Copied from Go's syscall/asm_linux_amd64.s (BSD licence): clone with
// CLONE_VFORK|CLONE_VM, run with the parent and the child on the same
// stack. The return address is kept in R12 across the system call, so
// that whatever the child pushes while the parent is suspended cannot
// clobber it.

#include "textflag.h"

// func rawVfork(trap, a1, a2, a3 uintptr) (r1, err uintptr)
TEXT ·rawVfork(SB),NOSPLIT|NOFRAME,$0-48
	MOVQ	a1+8(FP), DI
	MOVQ	a2+16(FP), SI
	MOVQ	a3+24(FP), DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$0, R9
	MOVQ	trap+0(FP), AX	// syscall entry
	POPQ	R12 // preserve return address
	SYSCALL
	PUSHQ	R12
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	MOVQ	$-1, r1+32(FP)
	NEGQ	AX
	MOVQ	AX, err+40(FP)
	RET
ok:
	MOVQ	AX, r1+32(FP)
	MOVQ	$0, err+40(FP)
	RET

// func rawCloneRun(args, size, c uintptr) (r1, err uintptr)
//
// clone3 for a child with a stack of its own (clone_args.stack), without
// CLONE_VFORK: the parent returns at once. The child starts on the new
// stack with the parent's registers; c travels in R12, which the system
// call leaves alone, and the child calls childRun(c), which never
// returns (the exit below is a backstop).
TEXT ·rawCloneRun(SB),NOSPLIT,$0-40
	MOVQ	args+0(FP), DI
	MOVQ	size+8(FP), SI
	MOVQ	c+16(FP), R12
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$0, R9
	MOVQ	$435, AX	// SYS_clone3
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	CMPQ	AX, $0xfffffffffffff001
	JLS	parent
	MOVQ	$-1, r1+24(FP)
	NEGQ	AX
	MOVQ	AX, err+32(FP)
	RET
parent:
	MOVQ	AX, r1+24(FP)
	MOVQ	$0, err+32(FP)
	RET
child:
	ANDQ	$-16, SP
	SUBQ	$16, SP
	MOVQ	R12, 0(SP)
	CALL	·childRun(SB)
exit:
	MOVQ	$253, DI
	MOVQ	$60, AX	// SYS_exit
	SYSCALL
	JMP	exit
